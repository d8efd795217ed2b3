//! External packages of `"use node"` bundles, chosen as the Convex CLI chooses
//! them (its `bundler/external.ts`): a package is external when `convex.json`'s
//! `node.externalPackages` names it (or says `"*"`), the project's `package.json`
//! depends on it from the registry, and it is installed in the `node_modules`
//! beside that `package.json`. Of those, the server installs the ones the bundle
//! imports, plus their peer and optional dependencies that are external too, each
//! at the exact version installed in the project.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{io_error, BundleError};
use crate::module_set::NodeDependency;

/// The sections of `package.json` whose packages may be external, in the order
/// the Convex CLI reads them.
const DEPENDENCY_SECTIONS: &[&str] = &["dependencies", "devDependencies", "peerDependencies", "optionalDependencies"];

/// Packages that may be left out of the Node.js bundle: name -> installed folder.
#[derive(Debug, Default)]
pub(crate) struct ExternalPackages {
    by_name: BTreeMap<String, PathBuf>,
}

impl ExternalPackages {
    /// Applies `allow_list` (from `convex.json`) to the `package.json` found in
    /// `project_root` or above.
    pub fn find(project_root: &Path, allow_list: &[String]) -> Result<ExternalPackages, BundleError> {
        if allow_list.is_empty() {
            return Ok(ExternalPackages::default());
        }
        let manifest = project_root
            .ancestors()
            .map(|dir| dir.join("package.json"))
            .find(|candidate| candidate.is_file())
            .ok_or_else(|| BundleError::PackageJsonMissing { from: project_root.to_path_buf() })?;
        let json = read_json(&manifest)?;
        let modules = manifest.parent().expect("a file has a parent").join("node_modules");
        let mut by_name = BTreeMap::new();
        for section in DEPENDENCY_SECTIONS {
            for (name, spec) in json.get(*section).and_then(Value::as_object).into_iter().flatten() {
                let spec = spec.as_str().ok_or_else(|| BundleError::PackageJson {
                    path: manifest.clone(),
                    reason: format!("\"{section}.{name}\" is not a version string"),
                })?;
                let folder = modules.join(name);
                if !by_name.contains_key(name) && should_mark_external(name, spec, allow_list) && folder.exists() {
                    by_name.insert(name.clone(), folder);
                }
            }
        }
        Ok(ExternalPackages { by_name })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The packages to install for a bundle whose code imports `specifiers`
    /// (as esbuild reports them: `react`, `react/jsx-runtime`, `node:fs`).
    pub fn dependencies<'a>(&self, specifiers: impl IntoIterator<Item = &'a str>) -> Result<Vec<NodeDependency>, BundleError> {
        let mut seen: BTreeSet<String> =
            specifiers.into_iter().map(package_name).filter(|name| self.by_name.contains_key(*name)).map(str::to_owned).collect();
        let mut queue: Vec<String> = seen.iter().cloned().collect();
        let mut out = Vec::new();
        while let Some(name) = queue.pop() {
            let installed = Installed::read(&name, &self.by_name[&name])?;
            for peer in installed.peers_and_optionals {
                if self.by_name.contains_key(&peer) && seen.insert(peer.clone()) {
                    queue.push(peer);
                }
            }
            out.push(NodeDependency { name, version: installed.version });
        }
        out.sort();
        Ok(out)
    }
}

/// The Convex CLI's rule: `convex` is always bundled, and so are packages that
/// come from a path, a URL or git, since the server could not install them.
fn should_mark_external(name: &str, spec: &str, allow_list: &[String]) -> bool {
    const BUNDLED_SPECS: &[&str] =
        &["file:", "git+file://", "http://", "https://", "git://", "git+ssh://", "git+http://", "git+https://"];
    name != "convex"
        && !BUNDLED_SPECS.iter().any(|prefix| spec.starts_with(prefix))
        && allow_list.iter().any(|allowed| allowed == name || allowed == "*")
}

/// The package an import specifier names: `@scope/name` or `name`, without a
/// subpath.
pub(crate) fn package_name(specifier: &str) -> &str {
    let mut slashes = specifier.match_indices('/').map(|(i, _)| i);
    let end = match specifier.starts_with('@') {
        true => slashes.nth(1),
        false => slashes.next(),
    };
    end.map_or(specifier, |end| &specifier[..end])
}

/// What a package's own `package.json` says about the installed copy.
struct Installed {
    version: String,
    peers_and_optionals: Vec<String>,
}

impl Installed {
    fn read(name: &str, folder: &Path) -> Result<Installed, BundleError> {
        let manifest = folder.join("package.json");
        let json = read_json(&manifest)?;
        let version = json.get("version").and_then(Value::as_str).ok_or_else(|| BundleError::PackageJson {
            path: manifest.clone(),
            reason: format!("no \"version\", which installing the external package \"{name}\" (convex.json) needs"),
        })?;
        let peers_and_optionals = ["peerDependencies", "optionalDependencies"]
            .iter()
            .filter_map(|section| json.get(*section).and_then(Value::as_object))
            .flat_map(|deps| deps.keys().cloned())
            .collect();
        Ok(Installed { version: version.to_owned(), peers_and_optionals })
    }
}

fn read_json(path: &Path) -> Result<Value, BundleError> {
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|e| BundleError::PackageJson { path: path.to_path_buf(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names_drop_subpaths() {
        assert_eq!(package_name("react"), "react");
        assert_eq!(package_name("react/jsx-runtime"), "react");
        assert_eq!(package_name("@jest/types"), "@jest/types");
        assert_eq!(package_name("@jest/types/build/x.js"), "@jest/types");
        assert_eq!(package_name("node:fs"), "node:fs");
    }

    #[test]
    fn convex_and_unregistered_sources_are_always_bundled() {
        let all = ["*".to_owned()];
        assert!(should_mark_external("react", "^18.0.0", &all));
        assert!(!should_mark_external("convex", "1.0.0", &all));
        assert!(!should_mark_external("local", "file:../local", &all));
        assert!(!should_mark_external("remote", "https://example.com/x.tgz", &all));
        let some = ["react".to_owned()];
        assert!(should_mark_external("react", "18.3.1", &some));
        assert!(!should_mark_external("react-dom", "18.3.1", &some));
    }
}
