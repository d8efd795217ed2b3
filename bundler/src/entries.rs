//! Which files of a functions folder are entry points, and of which kind.
//!
//! The rules mirror the official Convex CLI so that a project deploys the same
//! set of function modules to Convect as it would to Convex.

use std::fs;
use std::path::{Path, PathBuf};

use crate::directive::has_use_node;
use crate::error::{io_error, BundleError};
use crate::module_set::{Environment, ModuleKind};

/// Extensions the Convex CLI accepts for entry points.
const ENTRY_EXTENSIONS: &[&str] = &[".js", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".jsx"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub path: PathBuf,
    /// Forward-slash path relative to the functions folder.
    pub relative: String,
    pub kind: ModuleKind,
    pub environment: Environment,
}

impl Entry {
    /// The module the bundler emits for this entry: esbuild writes every
    /// entry as `.js`, whatever its source extension.
    pub fn output_path(&self) -> String {
        let stem = self.relative.rsplit_once('.').map_or(self.relative.as_str(), |(stem, _)| stem);
        format!("{stem}.js")
    }
}

/// Lists the entry points under `root` in a stable (sorted) order.
pub(crate) fn discover(root: &Path) -> Result<Vec<Entry>, BundleError> {
    let mut entries = Vec::new();
    walk(root, "", &mut entries)?;
    Ok(entries)
}

fn walk(dir: &Path, prefix: &str, out: &mut Vec<Entry>) -> Result<(), BundleError> {
    for (name, path, file_type) in sorted_children(dir)? {
        let relative = format!("{prefix}{name}");
        // Symlinks are neither files nor directories here, as in the Convex CLI.
        if file_type.is_dir() {
            if !skip_dir(&path, &relative, &name) {
                walk(&path, &format!("{relative}/"), out)?;
            }
        } else if file_type.is_file() {
            if let Some((kind, environment)) = classify(&path, &relative, &name)? {
                out.push(Entry {
                    path,
                    relative,
                    kind,
                    environment,
                });
            }
        }
    }
    Ok(())
}

fn sorted_children(dir: &Path) -> Result<Vec<(String, PathBuf, fs::FileType)>, BundleError> {
    let mut children = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let file_type = entry.file_type().map_err(io_error(&entry.path()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        children.push((name, entry.path(), file_type));
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(children)
}

fn skip_dir(path: &Path, relative: &str, name: &str) -> bool {
    relative == "_generated"
        || name.starts_with('.')
        || name == "node_modules"
        // A nested component is deployed through its own definition, not as
        // part of this folder.
        || path.join("convex.config.ts").exists()
}

fn classify(path: &Path, relative: &str, name: &str) -> Result<Option<(ModuleKind, Environment)>, BundleError> {
    if relative.starts_with("_deps/") {
        return Err(BundleError::ReservedFolder {
            path: path.to_path_buf(),
        });
    }
    if !ENTRY_EXTENSIONS.iter().any(|ext| relative.ends_with(ext))
        || name.starts_with('.')
        // Emacs lock and autosave files.
        || name.starts_with('#')
    {
        return Ok(None);
    }
    let top_level = !relative.contains('/');
    let kind = match special_kind(name, top_level) {
        Some(None) => return Ok(None),
        Some(Some(kind)) => kind,
        // `foo.test.ts`, `foo.d.ts`, `convex.config.ts` are never functions.
        None if name.matches('.').count() > 1 || relative.contains(' ') => return Ok(None),
        None => ModuleKind::Function,
    };
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    if kind == ModuleKind::Function && is_typescript(name) && !looks_like_module(&text) {
        return Ok(None);
    }
    if !has_use_node(&text) {
        return Ok(Some((kind, Environment::Isolate)));
    }
    if kind != ModuleKind::Function {
        return Err(BundleError::NodeNotAllowed {
            relative: relative.to_string(),
        });
    }
    Ok(Some((kind, Environment::Node)))
}

/// Kinds decided by name alone: `Some(None)` means "never an entry point".
fn special_kind(name: &str, top_level: bool) -> Option<Option<ModuleKind>> {
    let stem = name.split('.').next().unwrap_or(name);
    match (name, top_level) {
        ("schema.ts" | "schema.js", true) => Some(Some(ModuleKind::Schema)),
        ("schema.ts" | "schema.js", false) => Some(None),
        ("auth.config.ts" | "auth.config.js", true) => Some(Some(ModuleKind::AuthConfig)),
        _ if top_level && name.matches('.').count() == 1 => match stem {
            "http" => Some(Some(ModuleKind::Http)),
            "crons" => Some(Some(ModuleKind::Crons)),
            _ => None,
        },
        _ => None,
    }
}

fn is_typescript(name: &str) -> bool {
    name.ends_with(".ts") || name.ends_with(".tsx")
}

/// TypeScript treats a file without `import`/`export` as a script whose
/// declarations are global; the Convex CLI skips such files to avoid
/// confusing type errors, and so do we.
fn looks_like_module(text: &str) -> bool {
    text.lines().any(|line| {
        let line = line.trim_start();
        line.starts_with("import") || line.starts_with("export")
    })
}
