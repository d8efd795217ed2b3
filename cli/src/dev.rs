//! `convect dev`: serve the project on its own data directory, install its npm
//! dependencies if missing, deploy the functions and import the seeds, then
//! redeploy whenever a function file changes.

use crate::project::{self, LocalConfig, Project};
use crate::serve::{self, ServeArgs};
use crate::Target;
use anyhow::{bail, Context, Result};
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Waits this long after a change for more, so a save of many files deploys once.
const DEBOUNCE: Duration = Duration::from_millis(300);

fn ensure_npm_dependencies(functions: &Path) -> Result<()> {
    if project::has_convex_package(functions) {
        return Ok(());
    }
    let Some(root) = project::package_root(functions) else {
        bail!("the `convex` npm package is not installed and there is no package.json above {}; run `npm install convex`", functions.display());
    };
    eprintln!("Installing npm dependencies in {} ...", root.display());
    let status = std::process::Command::new("npm").arg("install").current_dir(&root).status().context("running npm install")?;
    if !status.success() {
        bail!("npm install failed in {}", root.display());
    }
    Ok(())
}

async fn push(functions: &Path, target: &Target) -> Result<()> {
    convect_bundler::codegen(functions)?;
    crate::client::deploy(functions, target).await
}

async fn import_seeds(project: &Project, root: &Path, target: &Target) -> Result<()> {
    for seed in &project.seeds {
        let files = seed.expand(root)?;
        crate::import::import(target, &seed.table, &files, seed.upsert_by.as_deref()).await?;
    }
    Ok(())
}

pub async fn run(dir: Option<PathBuf>, port: u16) -> Result<()> {
    let root = std::env::current_dir()?;
    let project = Project::load(&root)?;
    let functions = dir.unwrap_or_else(|| project.functions_dir(&root));
    let Ok(functions) = functions.canonicalize() else {
        bail!("{} does not exist; pass the functions folder (`convect dev functions`) or set \"functions\" in convect.json", functions.display());
    };
    ensure_npm_dependencies(&functions)?;
    let data = root.join(project::DATA_DIR);
    let server = serve::start(ServeArgs::local(data.clone(), port)?).await?;
    let target = Target { url: Some(server.url.clone()), admin_key: Some(server.admin_key.clone()) };
    project::write_local_config(&data, &LocalConfig { url: server.url.clone(), admin_key: server.admin_key.clone() })?;
    if let Err(e) = push(&functions, &target).await {
        eprintln!("error: {e:#}");
    }
    import_seeds(&project, &root, &target).await?;
    println!("Watching {} for changes. Press Ctrl-C to stop.", functions.display());
    tokio::select! {
        r = watch(&functions, &target) => r,
        r = server.finished => r.context("server task")?,
    }
}

async fn watch(functions: &Path, target: &Target) -> Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let generated = functions.join("_generated");
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if event.paths.iter().any(|p| !p.starts_with(&generated)) {
                let _ = tx.send(());
            }
        }
    })?;
    watcher.watch(functions, RecursiveMode::Recursive)?;
    while rx.recv().await.is_some() {
        tokio::time::sleep(DEBOUNCE).await;
        while rx.try_recv().is_ok() {}
        if let Err(e) = push(functions, target).await {
            eprintln!("error: {e:#}");
        }
    }
    Ok(())
}
