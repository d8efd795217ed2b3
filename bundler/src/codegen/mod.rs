//! Writes a functions folder's `_generated` directory: the typed function
//! builders (`server`), the function references (`api`) and the data model
//! types (`dataModel`) that a Convex project imports and type-checks against.

mod api;

use std::fs;
use std::path::{Path, PathBuf};

use crate::entries::{discover, Entry};
use crate::error::{io_error, BundleError};
use crate::module_set::ModuleKind;

const SERVER_JS: &str = include_str!("templates/server.js");
const SERVER_D_TS: &str = include_str!("templates/server.d.ts");
const API_JS: &str = include_str!("templates/api.js");
const DATA_MODEL_WITH_SCHEMA: &str = include_str!("templates/dataModel_schema.d.ts");
const DATA_MODEL_WITHOUT_SCHEMA: &str = include_str!("templates/dataModel_any.d.ts");

/// `root` is the canonical functions folder; returns the files it changed.
pub(crate) fn write(root: &Path) -> Result<Vec<PathBuf>, BundleError> {
    let entries = discover(root)?;
    let dir = root.join("_generated");
    fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let files = [
        ("server.js", SERVER_JS.to_string()),
        ("server.d.ts", SERVER_D_TS.to_string()),
        ("api.js", API_JS.to_string()),
        ("api.d.ts", api::declarations(&entries)),
        ("dataModel.d.ts", data_model(&entries).to_string()),
    ];
    let mut changed = Vec::new();
    for (name, content) in files {
        let path = dir.join(name);
        if write_if_changed(&path, &content)? {
            changed.push(path);
        }
    }
    Ok(changed)
}

fn data_model(entries: &[Entry]) -> &'static str {
    if entries.iter().any(|e| e.kind == ModuleKind::Schema) {
        DATA_MODEL_WITH_SCHEMA
    } else {
        DATA_MODEL_WITHOUT_SCHEMA
    }
}

fn write_if_changed(path: &Path, content: &str) -> Result<bool, BundleError> {
    if fs::read_to_string(path).is_ok_and(|existing| existing == content) {
        return Ok(false);
    }
    fs::write(path, content).map_err(io_error(path))?;
    Ok(true)
}
