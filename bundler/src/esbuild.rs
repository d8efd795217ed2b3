//! Runs esbuild, the bundler the official Convex CLI uses, with the options it
//! uses, so that a folder bundles for Convect exactly as it would for Convex:
//! CommonJS packages, JSON imports, conditional exports, dynamic `import()`.
//! The native binary from `node_modules` is run directly, so deploying needs
//! the project's packages but not Node.js itself.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{io_error, BundleError};
use crate::module_set::Environment;
use crate::source_map;

/// A located esbuild executable.
pub(crate) struct Esbuild {
    binary: PathBuf,
}

/// What one esbuild run produced.
pub(crate) struct Build {
    pub outputs: Vec<Output>,
    /// The specifiers of imports left to the runtime (`--external`), as written
    /// in the source: `react`, `react/jsx-runtime`, `node:fs`.
    pub external_imports: BTreeSet<String>,
}

/// One emitted JavaScript file, by its path relative to the output folder,
/// with the source map esbuild wrote beside it.
pub(crate) struct Output {
    pub path: String,
    pub source: String,
    pub source_map: Option<String>,
}

impl Esbuild {
    /// `CONVECT_ESBUILD`, else the platform package esbuild installs beside
    /// itself (`@esbuild/<os>-<arch>`), looked up in `node_modules` folders
    /// from `from` upwards, as Node resolves packages.
    pub fn locate(from: &Path) -> Result<Esbuild, BundleError> {
        if let Some(binary) = std::env::var_os("CONVECT_ESBUILD") {
            return Ok(Esbuild { binary: binary.into() });
        }
        let package = platform_package();
        from.ancestors()
            .flat_map(|dir| {
                let modules = dir.join("node_modules");
                [
                    modules.join(&package).join("bin/esbuild"),
                    modules.join("convex/node_modules").join(&package).join("bin/esbuild"),
                ]
            })
            .find(|candidate| candidate.is_file())
            .map(|binary| Esbuild { binary })
            .ok_or_else(|| BundleError::EsbuildMissing { from: from.to_path_buf() })
    }

    /// Bundles `entries` (absolute paths below `root`) for one runtime.
    /// Shared code is split into content-hashed chunks under `_deps/`
    /// (`_deps/node/` for Node.js), as the Convex CLI does. Imports of the
    /// `externals` packages (and their subpaths) stay imports.
    pub fn bundle<'a>(
        &self,
        root: &Path,
        entries: &[&Path],
        environment: Environment,
        externals: impl IntoIterator<Item = &'a str>,
    ) -> Result<Build, BundleError> {
        if entries.is_empty() {
            return Ok(Build { outputs: Vec::new(), external_imports: BTreeSet::new() });
        }
        let temp = tempfile::tempdir().map_err(io_error(root))?;
        // Written beside the output folder, not in it, so it is not taken for a module.
        let metafile = tempfile::NamedTempFile::new().map_err(io_error(root))?;
        // Map sources are relative to the output folder as esbuild sees it; a
        // canonical path keeps them resolvable when the temp folder is a symlink.
        let out = temp.path().canonicalize().map_err(io_error(temp.path()))?;
        let (platform, chunks, runtime) = match environment {
            Environment::Isolate => ("browser", "_deps/[hash]", "Convex's runtime"),
            Environment::Node => ("node", "_deps/node/[hash]", "Node.js"),
        };
        let output = Command::new(&self.binary)
            // Paths in esbuild's comments and messages are relative to this.
            .current_dir(root)
            .args(entries)
            .args(["--bundle", "--format=esm", "--target=esnext", "--jsx=automatic", "--splitting"])
            .args(["--conditions=convex,module", "--log-level=warning", "--color=false", "--log-limit=0"])
            // Maps beside the files (the sources keep no comment pointing at them,
            // so module hashes do not depend on them); the engine maps stack frames.
            .args(["--sourcemap=external", "--sources-content=false"])
            .arg(format!("--platform={platform}"))
            .arg(format!("--chunk-names={chunks}"))
            .arg(format!("--outbase={}", root.display()))
            .arg(format!("--outdir={}", out.display()))
            .args(externals.into_iter().flat_map(|name| [format!("--external:{name}"), format!("--external:{name}/*")]))
            // Lists every import esbuild left external, which tells which external
            // packages the bundle actually uses.
            .arg(format!("--metafile={}", metafile.path().display()))
            .output()
            .map_err(io_error(&self.binary))?;
        let messages = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            return Err(BundleError::Esbuild { runtime, hint: hint(environment, &messages), messages });
        }
        let mut outputs = Vec::new();
        collect(&out, &out, &mut outputs)?;
        for output in &mut outputs {
            if let Some(map) = &output.source_map {
                output.source_map = Some(source_map::convex_paths(map, &out, &output.path, root)?);
            }
        }
        Ok(Build { outputs, external_imports: external_imports(metafile.path())? })
    }
}

/// The external imports esbuild's metafile lists for the inputs it bundled.
fn external_imports(metafile: &Path) -> Result<BTreeSet<String>, BundleError> {
    #[derive(serde::Deserialize)]
    struct Metafile {
        inputs: std::collections::HashMap<String, Input>,
    }
    #[derive(serde::Deserialize)]
    struct Input {
        #[serde(default)]
        imports: Vec<Import>,
    }
    #[derive(serde::Deserialize)]
    struct Import {
        path: String,
        #[serde(default)]
        external: bool,
    }
    let text = fs::read_to_string(metafile).map_err(io_error(metafile))?;
    let meta: Metafile =
        serde_json::from_str(&text).map_err(|e| BundleError::Metafile { reason: e.to_string() })?;
    Ok(meta.inputs.into_values().flat_map(|input| input.imports).filter(|i| i.external).map(|i| i.path).collect())
}

/// Convex's advice when a default-runtime file reaches for Node APIs.
fn hint(environment: Environment, messages: &str) -> &'static str {
    if environment == Environment::Isolate && messages.contains("Are you trying to bundle for node?") {
        "\nIt looks like you are using Node APIs from a file without the \"use node\" directive.\n\
         Split out actions using Node.js APIs like this into a new file only containing actions that uses \"use node\" \
         so these actions will run in a Node.js environment."
    } else {
        ""
    }
}

/// Every file esbuild wrote below `dir` but the maps, each with the map esbuild
/// wrote beside it (`a.js.map` for `a.js`), read as is.
fn collect(base: &Path, dir: &Path, out: &mut Vec<Output>) -> Result<(), BundleError> {
    for entry in fs::read_dir(dir).map_err(io_error(dir))? {
        let path = entry.map_err(io_error(dir))?.path();
        if path.is_dir() {
            collect(base, &path, out)?;
        } else if path.extension().is_none_or(|e| e != "map") {
            let relative = path.strip_prefix(base).expect("below the output folder");
            let relative: Vec<_> = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect();
            let source = fs::read_to_string(&path).map_err(io_error(&path))?;
            let mut map_path = path.clone().into_os_string();
            map_path.push(".map");
            let map_path = PathBuf::from(map_path);
            let source_map = match map_path.is_file() {
                true => Some(fs::read_to_string(&map_path).map_err(io_error(&map_path))?),
                false => None,
            };
            out.push(Output { path: relative.join("/"), source, source_map });
        }
    }
    Ok(())
}

/// The npm package holding the native esbuild binary for this machine.
fn platform_package() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        "x86" => "ia32",
        other => other,
    };
    format!("@esbuild/{os}-{arch}")
}
