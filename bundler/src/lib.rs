//! Turns a Convex functions folder into a [`ModuleSet`]: the ES modules a
//! deployment ships, bundled by esbuild exactly as the official Convex CLI
//! bundles them (one build for Convex's runtime, one for `"use node"` files),
//! and writes the `_generated` files a Convex project type-checks against.
//!
//! Contract with the runtime: modules import each other with relative
//! specifiers (`./_deps/ABC.js`), resolved against the importing module's
//! path; entry modules are named after their source file with a `.js`
//! extension (`dir/file.ts` becomes `dir/file.js`). Each module carries
//! esbuild's source map, its sources named as in maps the Convex CLI makes.

mod codegen;
mod directive;
mod entries;
mod error;
mod esbuild;
mod external;
mod module_set;
mod project_config;
mod source_map;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use entries::Entry;
use esbuild::Esbuild;
pub use error::BundleError;
use external::ExternalPackages;
pub use module_set::{Environment, Module, ModuleKind, ModuleSet, NodeDependency};

/// Bundles the functions folder `functions_dir` and everything it imports.
///
/// Packages, and esbuild itself, are looked up in `node_modules` folders from
/// the functions folder upwards, as Node does. `convex.json` in the functions
/// folder's parent (the project root) may name packages that `"use node"`
/// modules import instead of containing; the set lists the ones they use.
pub fn bundle(functions_dir: &Path) -> Result<ModuleSet, BundleError> {
    let root = canonical_dir(functions_dir)?;
    let entries = entries::discover(&root)?;
    let esbuild = Esbuild::locate(&root)?;
    let project_root = root.parent().unwrap_or(&root);
    let config = project_config::read(project_root)?;
    let externals = ExternalPackages::find(project_root, &config.node.external_packages)?;
    let mut modules = Vec::new();
    let mut node_dependencies = Vec::new();
    for environment in [Environment::Isolate, Environment::Node] {
        let chosen: Vec<&Entry> = entries.iter().filter(|e| e.environment == environment).collect();
        let kinds: HashMap<String, ModuleKind> = chosen.iter().map(|e| (e.output_path(), e.kind)).collect();
        let paths: Vec<&Path> = chosen.iter().map(|e| e.path.as_path()).collect();
        // As in the Convex CLI, only Node.js can install packages at deploy time.
        let external_names: Vec<&str> = match environment {
            Environment::Isolate => Vec::new(),
            Environment::Node => externals.names().collect(),
        };
        let build = esbuild.bundle(&root, &paths, environment, external_names)?;
        if environment == Environment::Node {
            node_dependencies = externals.dependencies(build.external_imports.iter().map(String::as_str))?;
        }
        for output in build.outputs {
            let kind = kinds.get(&output.path).copied().unwrap_or(ModuleKind::Dependency);
            modules.push(Module::new(output.path, output.source, kind, environment).with_source_map(output.source_map));
        }
    }
    modules.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(ModuleSet { modules, node_dependencies })
}

/// Writes `_generated/{server.js,server.d.ts,api.js,api.d.ts,dataModel.d.ts}`
/// into the functions folder and returns the files whose content changed
/// (unchanged files are left untouched so file watchers stay quiet).
pub fn codegen(functions_dir: &Path) -> Result<Vec<PathBuf>, BundleError> {
    codegen::write(&canonical_dir(functions_dir)?)
}

fn canonical_dir(dir: &Path) -> Result<PathBuf, BundleError> {
    let canonical = dir.canonicalize().map_err(error::io_error(dir))?;
    if canonical.is_dir() {
        Ok(canonical)
    } else {
        Err(BundleError::NotADirectory {
            path: dir.to_path_buf(),
        })
    }
}
