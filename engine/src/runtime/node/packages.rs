//! npm packages that `"use node"` bundles import instead of containing
//! (`convex.json`'s `node.externalPackages`), installed by npm as Convex's server
//! installs them. Each set of `name@version`s is installed once, into
//! `<scratch>/packages/<hash>/node_modules`: in a temporary folder renamed into
//! place, so a half-finished install is never used, and kept across restarts and
//! deploys. A bundle folder links its `node_modules` there (see `scratch.rs`).

use super::worker::resolve_node;
use convect_bundler::NodeDependency;
use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Big installs (jest, with babel) take minutes on a slow registry; a hung one
/// must still not block deploys forever.
const INSTALL_TIME_LIMIT: Duration = Duration::from_secs(600);
/// Lines of npm's stderr kept to explain a failed install.
const STDERR_TAIL: usize = 30;
/// Variables npm needs from the server's environment (its home for the cache and
/// `.npmrc`, its configuration, proxies and certificates). Nothing else is passed:
/// install scripts are the deployment's code, and the server's secrets are not
/// theirs, as they are not its actions'.
const PASSED_ENV: &[&str] = &[
    "HOME",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum PackageError {
    #[error(
        "\"use node\" modules import packages that convex.json's node.externalPackages leaves out of the \
         bundle, which Convect installs with npm, but {0}. Install npm (it comes with Node.js), or set \
         CONVECT_NPM to the npm executable."
    )]
    NpmMissing(String),
    #[error("cannot install the external package \"{name}@{version}\": not an npm package name and version")]
    Invalid { name: String, version: String },
    #[error("installing external packages: {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("running npm ({npm}) to install external packages: {source}")]
    Spawn { npm: String, source: std::io::Error },
    #[error("npm install {packages} failed ({status}):\n{stderr}")]
    Failed { packages: String, status: String, stderr: String },
    #[error("npm install {packages} did not finish within {INSTALL_TIME_LIMIT:?}")]
    TimedOut { packages: String },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
    move |source| PackageError::Io { path: path.display().to_string(), source }
}

pub(super) struct Packages {
    /// `<scratch>/packages`.
    root: PathBuf,
    /// The configured `node` (`None`: on PATH): npm is looked up beside it, and
    /// runs with it.
    node: Option<PathBuf>,
    /// `CONVECT_NPM`: the npm executable, a path or a name on PATH.
    npm: Option<PathBuf>,
    /// One lock per set being installed, so that concurrent deploys and calls
    /// needing the same set wait for one install instead of running npm twice.
    installing: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Packages {
    pub(super) fn new(root: PathBuf, node: Option<PathBuf>) -> Packages {
        let npm = std::env::var_os("CONVECT_NPM").filter(|v| !v.is_empty()).map(PathBuf::from);
        Packages { root, node, npm, installing: Mutex::new(HashMap::new()) }
    }

    /// The `node_modules` folder holding `dependencies`, installed now if it is
    /// not there yet.
    pub(super) async fn provide(&self, dependencies: &[NodeDependency]) -> Result<PathBuf, PackageError> {
        let specs = specs(dependencies)?;
        let set = self.root.join(set_name(&specs));
        let lock = self.lock(&set);
        let _installing = lock.lock().await;
        if !set.is_dir() {
            self.install(&specs, &set).await?;
        }
        Ok(set.join("node_modules"))
    }

    fn lock(&self, set: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut installing = self.installing.lock().expect("package locks poisoned");
        installing.entry(set.display().to_string()).or_default().clone()
    }

    /// Runs npm in a temporary folder beside `set`, then renames it to `set`.
    async fn install(&self, specs: &[String], set: &Path) -> Result<(), PackageError> {
        let (npm, node_dir) = self.locate_npm()?;
        let tmp = self.root.join(format!(".tmp-{}", rand::random::<u64>()));
        let started = Instant::now();
        tracing::info!(packages = %specs.join(" "), "installing external packages for Node.js");
        let result = async {
            prepare(&tmp).await?;
            run_npm(&npm, &node_dir, &tmp, specs).await?;
            tokio::fs::rename(&tmp, set).await.map_err(io_err(set))
        }
        .await;
        if result.is_err() {
            if let Err(e) = tokio::fs::remove_dir_all(&tmp).await {
                tracing::debug!(dir = %tmp.display(), error = %e, "could not remove a failed package install");
            }
        } else {
            tracing::info!(packages = %specs.join(" "), elapsed = ?started.elapsed(), "installed external packages");
        }
        result
    }

    /// npm, and the folder of the `node` it should run with (first on its PATH,
    /// since npm is a script started through `#!/usr/bin/env node`).
    fn locate_npm(&self) -> Result<(PathBuf, PathBuf), PackageError> {
        let node = resolve_node(self.node.as_deref()).map_err(|e| PackageError::NpmMissing(e.to_string()))?;
        let node_dir = node.parent().map(Path::to_path_buf).unwrap_or_default();
        let npm = match &self.npm {
            Some(npm) => find_executable(npm).ok_or_else(|| {
                PackageError::NpmMissing(format!("{} (from CONVECT_NPM) was not found", npm.display()))
            })?,
            None => Some(node_dir.join("npm")).filter(|p| p.is_file()).or_else(|| find_executable(Path::new("npm"))).ok_or_else(
                || PackageError::NpmMissing(format!("`npm` is neither beside {} nor on PATH", node.display())),
            )?,
        };
        Ok((npm, node_dir))
    }
}

/// `name@version` for each dependency, sorted; refuses what npm would read as
/// something else (an option, a second argument).
fn specs(dependencies: &[NodeDependency]) -> Result<Vec<String>, PackageError> {
    let mut specs = Vec::with_capacity(dependencies.len());
    for d in dependencies {
        let name_ok = is_package_name(&d.name);
        let version_ok = !d.version.is_empty() && !d.version.starts_with('-') && !d.version.contains(char::is_whitespace);
        if !name_ok || !version_ok {
            return Err(PackageError::Invalid { name: d.name.clone(), version: d.version.clone() });
        }
        specs.push(format!("{}@{}", d.name, d.version));
    }
    specs.sort();
    specs.dedup();
    Ok(specs)
}

/// npm's rules, loosely: `name` or `@scope/name`, URL-safe characters, not
/// starting with `.`, `_` or `-`.
fn is_package_name(name: &str) -> bool {
    let bare = match name.strip_prefix('@') {
        Some(scoped) => match scoped.split_once('/') {
            Some((scope, bare)) if is_name_part(scope) => bare,
            _ => return false,
        },
        None => name,
    };
    is_name_part(bare)
}

fn is_name_part(part: &str) -> bool {
    !part.is_empty()
        && !part.starts_with(['.', '_', '-'])
        && part.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
}

/// The folder of a set of specs: equal sets share it, whatever their order.
fn set_name(specs: &[String]) -> String {
    let hash = blake3::hash(specs.join("\n").as_bytes()).to_hex();
    hash[..32].to_owned()
}

/// A folder for npm to install into, with a `package.json` of its own: without
/// one npm would install into the nearest folder above that has one.
async fn prepare(tmp: &Path) -> Result<(), PackageError> {
    tokio::fs::create_dir_all(tmp).await.map_err(io_err(tmp))?;
    let manifest = tmp.join("package.json");
    tokio::fs::write(&manifest, "{\"private\":true}\n").await.map_err(io_err(&manifest))
}

async fn run_npm(npm: &Path, node_dir: &Path, dir: &Path, specs: &[String]) -> Result<(), PackageError> {
    let mut cmd = tokio::process::Command::new(npm);
    cmd.args(["install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts=false"])
        .args(specs)
        .current_dir(dir)
        .env_clear()
        .envs(passed_env())
        .env("PATH", path_with(node_dir))
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let packages = specs.join(" ");
    let output = match tokio::time::timeout(INSTALL_TIME_LIMIT, cmd.output()).await {
        Ok(output) => output.map_err(|source| PackageError::Spawn { npm: npm.display().to_string(), source })?,
        Err(_) => return Err(PackageError::TimedOut { packages }),
    };
    if output.status.success() {
        for line in String::from_utf8_lossy(&output.stderr).lines() {
            tracing::debug!(target: "convect::npm", "{line}");
        }
        return Ok(());
    }
    Err(PackageError::Failed { packages, status: output.status.to_string(), stderr: tail(&output.stderr) })
}

fn passed_env() -> impl Iterator<Item = (OsString, OsString)> {
    std::env::vars_os().filter(|(name, _)| {
        let name = name.to_string_lossy();
        PASSED_ENV.contains(&name.as_ref()) || name.to_ascii_lowercase().starts_with("npm_config_")
    })
}

/// The server's PATH with `node_dir` first.
fn path_with(node_dir: &Path) -> OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(node_dir.to_path_buf()).chain(std::env::split_paths(&rest));
    std::env::join_paths(dirs).unwrap_or(rest)
}

/// `program` if it is a path to a file, else the first `program` on PATH.
fn find_executable(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf()).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| candidate.is_file())
}

fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut lines: VecDeque<&str> = VecDeque::with_capacity(STDERR_TAIL);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if lines.len() == STDERR_TAIL {
            lines.pop_front();
        }
        lines.push_back(line);
    }
    lines.into_iter().collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, version: &str) -> NodeDependency {
        NodeDependency { name: name.into(), version: version.into() }
    }

    #[test]
    fn specs_are_sorted_and_name_one_folder_whatever_their_order() {
        let a = specs(&[dep("react", "18.3.1"), dep("@jest/types", "30.0.0")]).unwrap();
        let b = specs(&[dep("@jest/types", "30.0.0"), dep("react", "18.3.1")]).unwrap();
        assert_eq!(a, vec!["@jest/types@30.0.0", "react@18.3.1"]);
        assert_eq!(set_name(&a), set_name(&b));
        assert_ne!(set_name(&a), set_name(&specs(&[dep("react", "18.3.0")]).unwrap()));
    }

    #[test]
    fn what_npm_would_read_as_options_or_paths_is_refused() {
        for (name, version) in [("--global", "1"), ("a b", "1"), ("../x", "1"), ("@scope", "1"), ("ok", "-g"), ("ok", ""), ("ok", "1 2")] {
            assert!(matches!(specs(&[dep(name, version)]), Err(PackageError::Invalid { .. })), "{name}@{version}");
        }
        assert!(specs(&[dep("@scope/pkg.js", "^1.0.0"), dep("node-fetch", "2.7.0")]).is_ok());
    }
}
