//! The bundler's output: the set of transformed modules a deployment ships,
//! each keyed by its canonical name and content-addressed so that a redeploy
//! only needs to send and recompile the modules whose hash changed.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleSet {
    /// Sorted by `path`, so equal inputs serialize identically.
    pub modules: Vec<Module>,
    /// Packages the `"use node"` modules import but do not contain (`convex.json`'s
    /// `node.externalPackages`), sorted by name: the server installs them.
    #[serde(rename = "nodeDependencies", default)]
    pub node_dependencies: Vec<NodeDependency>,
}

impl ModuleSet {
    pub fn get(&self, path: &str) -> Option<&Module> {
        self.modules
            .binary_search_by(|m| m.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.modules[i])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    /// Canonical module name; every import of this module in the set uses
    /// exactly this string as its specifier.
    pub path: String,
    /// Plain ES module JavaScript.
    pub source: String,
    /// blake3 hex digest of `source` (not of the map: a map names files by
    /// path, and moving a folder should not redeploy its code).
    pub hash: String,
    pub kind: ModuleKind,
    pub environment: Environment,
    /// esbuild's source map of `source`, without `sourcesContent`, its sources
    /// named relative to `<project>/out/<this module's folder>` as in the
    /// Convex CLI's maps. The engine maps stack frames through it.
    #[serde(rename = "sourceMap", default, skip_serializing_if = "Option::is_none")]
    pub source_map: Option<String>,
}

impl Module {
    pub fn new(path: String, source: String, kind: ModuleKind, environment: Environment) -> Self {
        let hash = blake3::hash(source.as_bytes()).to_hex().to_string();
        Self {
            path,
            source,
            hash,
            kind,
            environment,
            source_map: None,
        }
    }

    pub fn with_source_map(self, source_map: Option<String>) -> Self {
        Self { source_map, ..self }
    }
}

/// An npm package left out of the Node.js bundle, at the exact version installed
/// in the project (as the Convex CLI reports it), to be installed where it runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeDependency {
    pub name: String,
    pub version: String,
}

/// Where a module runs: Convect's embedded runtime, or Node.js for files that
/// begin with the `"use node"` directive. Named as Convex names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    #[default]
    Isolate,
    Node,
}

/// What the engine should do with a module: entry points (everything but
/// `Dependency`) are loaded by name; dependencies only through imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleKind {
    Function,
    Schema,
    Http,
    Crons,
    AuthConfig,
    Dependency,
}
