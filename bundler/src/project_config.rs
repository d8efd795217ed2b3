//! `convex.json`, the Convex CLI's project configuration, read from the project
//! root (the folder holding the functions folder). Only what changes how a folder
//! bundles is read; other settings are accepted and ignored, as the Convex CLI
//! reads the file loosely.

use std::path::Path;

use serde::Deserialize;

use crate::error::{io_error, BundleError};

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ProjectConfig {
    pub node: NodeSettings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct NodeSettings {
    /// npm package names, or `"*"` for every package of `package.json`, that
    /// `"use node"` bundles import instead of containing.
    pub external_packages: Vec<String>,
}

/// `<project_root>/convex.json`, or the defaults when there is none.
pub(crate) fn read(project_root: &Path) -> Result<ProjectConfig, BundleError> {
    let path = project_root.join("convex.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ProjectConfig::default()),
        Err(e) => return Err(io_error(&path)(e)),
    };
    serde_json::from_str(&text).map_err(|e| BundleError::ConvexJson { path, reason: e.to_string() })
}
