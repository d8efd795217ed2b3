//! Source maps as Convex keeps them. esbuild names each map's `sources`
//! relative to the folder it wrote the map in, our temporary output folder.
//! The Convex CLI bundles into `<project>/out` (beside the functions folder),
//! so its maps name sources relative to the module's folder there:
//! `../convex/errors.ts` for `errors.js`, `../../convex/dir/file.ts` for
//! `dir/file.js`. Stack traces print these paths, so ours are rewritten to
//! match.

use std::path::{Component, Path, PathBuf};

use crate::error::BundleError;

/// `map`, written by esbuild for `module` below `out_dir`, with its sources
/// relative to where the Convex CLI would have written `module`.
pub(crate) fn convex_paths(map: &str, out_dir: &Path, module: &str, functions_dir: &Path) -> Result<String, BundleError> {
    let invalid = |reason: &str| BundleError::SourceMap { module: module.to_owned(), reason: reason.to_owned() };
    let mut json: serde_json::Value = serde_json::from_str(map).map_err(|e| invalid(&e.to_string()))?;
    let written_in = folder_of(&out_dir.join(module));
    let project = functions_dir.parent().unwrap_or(functions_dir);
    let convex_out = folder_of(&project.join("out").join(module));
    let sources = json["sources"].as_array_mut().ok_or_else(|| invalid("it has no `sources` list"))?;
    for source in sources {
        let relative = source.as_str().ok_or_else(|| invalid("a source is not a string"))?;
        // A URL kept from a package's own map (`webpack://...`) names no file here.
        if relative.contains("://") {
            continue;
        }
        let absolute = normalize(&written_in.join(relative));
        *source = relative_path(&convex_out, &absolute).into();
    }
    Ok(json.to_string())
}

fn folder_of(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Resolves `.` and `..` without touching the file system: the map names files
/// as esbuild saw them, symlinks included.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The `/`-separated path from folder `from` to `to`, both absolute.
fn relative_path(from: &Path, to: &Path) -> String {
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let up = std::iter::repeat_n("..".to_owned(), from.len() - common);
    let down = to[common..].iter().map(|c| c.as_os_str().to_string_lossy().into_owned());
    up.chain(down).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(map: &str) -> Vec<String> {
        let json: serde_json::Value = serde_json::from_str(map).unwrap();
        serde_json::from_value(json["sources"].clone()).unwrap()
    }

    #[test]
    fn sources_become_relative_to_the_module_folder_in_project_out() {
        let map = r#"{"version":3,"sources":["../../../p/convex/dir/file.ts","../../../p/node_modules/convex/src/server/impl/x.ts","webpack://pkg/src/a.ts"],"mappings":"AAAA"}"#;
        let rewritten = convex_paths(map, Path::new("/tmp/out1"), "dir/file.js", Path::new("/p/convex")).unwrap();
        assert_eq!(
            sources(&rewritten),
            ["../../convex/dir/file.ts", "../../node_modules/convex/src/server/impl/x.ts", "webpack://pkg/src/a.ts"]
        );
        let top = r#"{"version":3,"sources":["../p/convex/errors.ts"],"mappings":"AAAA"}"#;
        let rewritten = convex_paths(top, Path::new("/tmp"), "errors.js", Path::new("/p/convex")).unwrap();
        assert_eq!(sources(&rewritten), ["../convex/errors.ts"]);
    }

    #[test]
    fn unreadable_maps_are_errors() {
        let err = convex_paths("{}", Path::new("/tmp"), "a.js", Path::new("/p/convex")).unwrap_err();
        assert!(matches!(err, BundleError::SourceMap { .. }), "{err}");
    }
}
