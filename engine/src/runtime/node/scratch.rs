//! The files Node.js imports: each bundle under `<scratch>/<key>/` (with a
//! `package.json` making its `.js` files ES modules) and the worker script. Written
//! once, atomically (a temporary directory renamed into place), so they survive
//! restarts and are never seen half-written; bundles not used lately are removed.
//! A bundle with external packages gets a `node_modules` link to their installed
//! set (`packages.rs`), through which Node resolves its imports of them.

use super::packages::Packages;
use super::NodeError;
use crate::runtime::NodeBundle;
use std::collections::VecDeque;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// The worker script: the entry points shared with QuickJS, then the worker itself.
const WORKER_JS: &str = concat!(include_str!("../shared.js"), "\n", include_str!("worker.js"));
/// Bundles kept on disk besides the one in use: the live deployment's and the one
/// being deployed are always among the most recent.
const KEEP_BUNDLES: usize = 4;
/// Below the scratch root: installed sets of external packages (`packages.rs`).
const PACKAGES_DIR: &str = "packages";

pub(super) struct Scratch {
    root: PathBuf,
    /// Bundle keys by last use, most recent last.
    recent: Mutex<VecDeque<String>>,
    packages: Packages,
}

fn scratch_err(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
    move |source| NodeError::Scratch { path: path.display().to_string(), source }
}

impl Scratch {
    /// `node` is the configured Node.js binary, beside which npm is looked for.
    pub(super) fn new(root: PathBuf, node: Option<PathBuf>) -> Scratch {
        // Workers run in this directory and are handed paths inside it, so a
        // relative root (`convect serve --data data`) would be applied twice.
        let root = std::path::absolute(&root).unwrap_or(root);
        let packages = Packages::new(root.join(PACKAGES_DIR), node);
        Scratch { root, recent: Mutex::new(VecDeque::new()), packages }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    /// The worker script's path, written on first use; named by its hash so a
    /// newer Convect never runs an older script left on disk.
    pub(super) async fn worker_script(&self) -> Result<PathBuf, NodeError> {
        let hash = blake3::hash(WORKER_JS.as_bytes()).to_hex();
        let path = self.root.join(format!("worker-{}.mjs", &hash[..16]));
        if path.is_file() {
            return Ok(path);
        }
        let root = self.root.clone();
        let target = path.clone();
        blocking(move || {
            std::fs::create_dir_all(&root).map_err(scratch_err(&root))?;
            let tmp = root.join(format!(".tmp-{}", rand::random::<u64>()));
            std::fs::write(&tmp, WORKER_JS).map_err(scratch_err(&tmp))?;
            std::fs::rename(&tmp, &target).map_err(scratch_err(&target))
        })
        .await?;
        Ok(path)
    }

    /// The directory holding `bundle`'s files, written if it is not there yet,
    /// after installing its external packages if they are not installed yet.
    pub(super) async fn materialize(&self, bundle: &NodeBundle) -> Result<PathBuf, NodeError> {
        let dir = self.root.join(&bundle.key);
        let stale = self.touch(&bundle.key);
        // Provided even when the bundle's folder exists, which links to them: the
        // packages may have been removed since, and are then installed again.
        let packages = match bundle.dependencies.is_empty() {
            true => None,
            false => Some(self.packages.provide(&bundle.dependencies).await?),
        };
        if !dir.is_dir() {
            let root = self.root.clone();
            let bundle = bundle.clone();
            blocking(move || write_bundle(&root, &bundle, packages.as_deref())).await?;
        }
        if !stale.is_empty() {
            let root = self.root.clone();
            blocking(move || {
                remove_bundles(&root, &stale);
                Ok(())
            })
            .await?;
        }
        Ok(dir)
    }

    /// Marks `key` as used now; returns the keys that fell out of the recent ones.
    fn touch(&self, key: &str) -> Vec<String> {
        let mut recent = self.recent.lock().expect("scratch state poisoned");
        recent.retain(|k| k != key);
        recent.push_back(key.to_owned());
        let excess = recent.len().saturating_sub(KEEP_BUNDLES);
        recent.drain(..excess).collect()
    }
}

async fn blocking(f: impl FnOnce() -> Result<(), NodeError> + Send + 'static) -> Result<(), NodeError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| NodeError::Channel(std::io::Error::other(e)))?
}

fn write_bundle(root: &Path, bundle: &NodeBundle, packages: Option<&Path>) -> Result<(), NodeError> {
    let tmp = root.join(format!(".tmp-{}-{}", bundle.key, rand::random::<u64>()));
    let result = write_files(&tmp, bundle).and_then(|()| match packages {
        Some(packages) => link_packages(root, &tmp, packages),
        None => Ok(()),
    });
    let result = result.and_then(|()| {
        let dir = root.join(&bundle.key);
        match std::fs::rename(&tmp, &dir) {
            // Another call wrote the same bundle first; its files are identical.
            Err(_) if dir.is_dir() => Ok(()),
            other => other.map_err(scratch_err(&dir)),
        }
    });
    if tmp.exists() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

fn write_files(dir: &Path, bundle: &NodeBundle) -> Result<(), NodeError> {
    std::fs::create_dir_all(dir).map_err(scratch_err(dir))?;
    let manifest = dir.join("package.json");
    std::fs::write(&manifest, "{\"type\":\"module\"}\n").map_err(scratch_err(&manifest))?;
    for (path, source) in &bundle.sources {
        // Paths come from a deploy request: keep every file inside the bundle directory.
        if !Path::new(path).components().all(|c| matches!(c, Component::Normal(_))) {
            let source = std::io::Error::new(std::io::ErrorKind::InvalidInput, "module path leaves the bundle");
            return Err(NodeError::Scratch { path: path.clone(), source });
        }
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(scratch_err(parent))?;
        }
        std::fs::write(&file, source).map_err(scratch_err(&file))?;
    }
    Ok(())
}

/// Links `<bundle>/node_modules` to `packages` (a folder below `root`), by a
/// relative path so that the data directory can be moved.
fn link_packages(root: &Path, bundle_dir: &Path, packages: &Path) -> Result<(), NodeError> {
    let below_root = packages.strip_prefix(root).expect("packages are installed below the scratch root");
    let link = bundle_dir.join("node_modules");
    std::os::unix::fs::symlink(Path::new("..").join(below_root), &link).map_err(scratch_err(&link))
}

/// Best effort: a bundle that cannot be removed now is left for a later pass.
fn remove_bundles(root: &Path, keys: &[String]) {
    for key in keys {
        let dir = root.join(key);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::debug!(dir = %dir.display(), error = %e, "could not remove an old Node.js bundle");
            }
        }
    }
}
