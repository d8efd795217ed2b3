//! The project a command runs in: `convect.json` (which folder holds the functions,
//! which seed files to import) and `.convect/config.json`, where `convect dev`
//! leaves the URL and admin key for the other commands to find.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DATA_DIR: &str = ".convect";
const PROJECT_FILE: &str = "convect.json";
const LOCAL_CONFIG: &str = "config.json";

#[derive(Debug, Default, Deserialize)]
pub struct Project {
    /// The functions folder, relative to the project root.
    #[serde(default)]
    pub functions: Option<PathBuf>,
    #[serde(default)]
    pub seeds: Vec<Seed>,
}

/// Files imported into a table by `convect dev`, idempotently when `upsert_by` is set.
#[derive(Debug, Deserialize)]
pub struct Seed {
    pub table: String,
    /// Files or directories (every .json/.jsonl/.csv file inside).
    pub files: Vec<PathBuf>,
    #[serde(rename = "upsertBy")]
    pub upsert_by: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct LocalConfig {
    pub url: String,
    #[serde(rename = "adminKey")]
    pub admin_key: String,
}

impl Project {
    pub fn load(root: &Path) -> Result<Project> {
        let path = root.join(PROJECT_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| format!("reading {}", path.display())),
            Err(_) => Ok(Project::default()),
        }
    }

    pub fn functions_dir(&self, root: &Path) -> PathBuf {
        root.join(self.functions.clone().unwrap_or_else(|| "convex".into()))
    }
}

impl Seed {
    /// The seed's files, directories expanded, in a stable order.
    pub fn expand(&self, root: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        for entry in &self.files {
            let path = root.join(entry);
            if path.is_dir() {
                let mut files: Vec<PathBuf> = std::fs::read_dir(&path)?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("json" | "jsonl" | "csv")))
                    .collect();
                files.sort();
                out.extend(files);
            } else {
                out.push(path);
            }
        }
        Ok(out)
    }
}

/// `.convect/config.json` in this directory or the nearest ancestor that has one.
pub fn find_local_config() -> Option<LocalConfig> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().find_map(|dir| {
        let text = std::fs::read_to_string(dir.join(DATA_DIR).join(LOCAL_CONFIG)).ok()?;
        serde_json::from_str(&text).ok()
    })
}

pub fn write_local_config(data_dir: &Path, config: &LocalConfig) -> Result<()> {
    let path = data_dir.join(LOCAL_CONFIG);
    std::fs::write(&path, serde_json::to_string_pretty(config)?).with_context(|| format!("writing {}", path.display()))
}

/// Whether `convex` can be imported from `dir`, as Node would resolve it.
pub fn has_convex_package(dir: &Path) -> bool {
    dir.ancestors().any(|d| d.join("node_modules/convex/package.json").is_file())
}

/// The nearest directory at or above `dir` with a package.json.
pub fn package_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.join("package.json").is_file()).map(Path::to_path_buf)
}
