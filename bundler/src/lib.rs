//! Turns a Convex functions folder into a [`ModuleSet`]: every reachable
//! module as plain ES module JavaScript whose import specifiers are canonical
//! module names, so the runtime's module loader is a map lookup; and writes
//! the `_generated` files a Convex project type-checks against.
//!
//! Contract with the runtime: an import specifier in a module of the set *is*
//! the `path` of the imported module, whatever module imports it; the loader
//! resolves `(importer, specifier)` to `specifier` and looks it up in the set.
//! The naming rules are documented in `src/names.rs`.

mod codegen;
mod compile;
mod entries;
mod error;
mod graph;
mod module_set;
mod names;
mod resolve;
mod rewrite;

use std::path::{Path, PathBuf};

pub use error::{BundleError, ImportProblem, Location};
pub use module_set::{Module, ModuleKind, ModuleSet};

/// Compiles the functions folder `functions_dir` and everything it imports.
///
/// Packages are looked up in `node_modules` folders from the functions folder
/// upwards, as Node does.
pub fn bundle(functions_dir: &Path) -> Result<ModuleSet, BundleError> {
    graph::build(&canonical_dir(functions_dir)?)
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
