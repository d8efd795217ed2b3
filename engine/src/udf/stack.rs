//! Stack frames of failed functions, printed as Convex prints them: every frame
//! in a module of the deployment mapped through that module's source map to
//! `    at <function> (<source>:<line>:<column>)`, where the source is named as
//! in the Convex CLI's maps (`../convex/errors.ts`). Frames of the `convex`
//! package's own wrapper code and of Convect's runtime (the prelude's
//! `eval_script`, the Node.js worker, Node internals) are left out, so users
//! see only their code and the libraries they called.

use crate::deployment::ModuleEntry;
use crate::storage::{Persistence, StorageError};
use sourcemap::SourceMap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Sources of the `convex` npm package's function wrappers (`registration_impl.ts`
/// and friends), which Convex leaves out of stack traces.
const CONVEX_WRAPPERS: &str = "convex/src/server/impl";

/// The source maps of one deployment's modules, each parsed the first time a
/// frame needs it: most deployments never fail, and a map is larger than the
/// module it maps.
#[derive(Debug, Default)]
pub struct SourceMaps {
    /// Each module's hash, which keys its stored map, by module path.
    hashes: HashMap<String, String>,
    /// Maps loaded so far; `None` for a module that has no usable map.
    loaded: Mutex<HashMap<String, Option<Arc<SourceMap>>>>,
}

#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("invalid source map: {0}")]
    Invalid(#[from] sourcemap::Error),
}

impl SourceMaps {
    pub fn new(modules: &[ModuleEntry]) -> SourceMaps {
        let hashes = modules.iter().map(|m| (m.path.clone(), m.hash.clone())).collect();
        SourceMaps { hashes, loaded: Mutex::default() }
    }

    /// `frames` (`    at fn (dir/file.js:L:C)` lines, as the runtimes report
    /// them) as Convex prints them; empty when no frame is the user's.
    pub fn map_frames(&self, frames: &str, store: &dyn Persistence) -> String {
        let mapped: Vec<String> = frames.lines().filter_map(|line| self.map_frame(line, store)).collect();
        mapped.join("\n")
    }

    /// One frame, or `None` to leave it out.
    fn map_frame(&self, line: &str, store: &dyn Persistence) -> Option<String> {
        let frame = Frame::parse(line)?;
        let hash = self.hashes.get(frame.file)?;
        let Some(map) = self.map(frame.file, hash, store) else {
            // Deployed before Convect kept maps: the generated location still helps.
            return Some(frame.render(frame.file, frame.line, frame.column));
        };
        // Tokens are 0-based; a frame's line and column are 1-based.
        let token = map
            .lookup_token(frame.line.saturating_sub(1), frame.column.saturating_sub(1))
            // The nearest token on an earlier line belongs to other code: this
            // position is code esbuild generated, which maps to no source.
            .filter(|t| t.get_dst_line() + 1 == frame.line);
        match token.and_then(|t| Some((t.get_source()?, t.get_src_line(), t.get_src_col()))) {
            Some((source, _, _)) if source.contains(CONVEX_WRAPPERS) => None,
            Some((source, line, column)) => Some(frame.render(source, line + 1, column + 1)),
            None => Some(frame.render(frame.file, frame.line, frame.column)),
        }
    }

    fn map(&self, module: &str, hash: &str, store: &dyn Persistence) -> Option<Arc<SourceMap>> {
        let mut loaded = self.loaded.lock().expect("source map cache poisoned");
        if let Some(map) = loaded.get(module) {
            return map.clone();
        }
        let map = load(hash, store).unwrap_or_else(|e| {
            tracing::warn!(module, error = %e, "cannot map stack frames of this module");
            None
        });
        loaded.insert(module.to_owned(), map.clone());
        map
    }
}

fn load(hash: &str, store: &dyn Persistence) -> Result<Option<Arc<SourceMap>>, LoadError> {
    match store.module_source_map(hash)? {
        Some(json) => Ok(Some(Arc::new(SourceMap::from_slice(json.as_bytes())?))),
        None => Ok(None),
    }
}

/// One `    at name (file:line:column)` or `    at file:line:column` line.
#[derive(Debug, PartialEq)]
struct Frame<'a> {
    /// V8's `at async ...`: a frame of an async function's caller chain.
    is_async: bool,
    /// `None` where V8 prints no name (an anonymous function).
    function: Option<&'a str>,
    file: &'a str,
    line: u32,
    column: u32,
}

impl<'a> Frame<'a> {
    /// `None` for lines that are not frames with a location (`at push (native)`).
    fn parse(line: &'a str) -> Option<Frame<'a>> {
        let rest = line.trim_start().strip_prefix("at ")?;
        let (is_async, rest) = rest.strip_prefix("async ").map_or((false, rest), |r| (true, r));
        let (function, location) = match rest.strip_suffix(')').and_then(|r| r.rsplit_once(" (")) {
            Some((function, location)) => (Some(function), location),
            None => (None, rest),
        };
        let mut parts = location.rsplitn(3, ':');
        let column = parts.next()?.parse().ok()?;
        let line = parts.next()?.parse().ok()?;
        let file = parts.next()?;
        Some(Frame { is_async, function, file, line, column })
    }

    /// Convex names every frame, anonymous ones `<anonymous>`.
    fn render(&self, file: &str, line: u32, column: u32) -> String {
        let prefix = if self.is_async { "async " } else { "" };
        format!("    at {prefix}{} ({file}:{line}:{column})", self.function.unwrap_or("<anonymous>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{CatalogWrite, SqliteStore};
    use convect_bundler::{Environment, ModuleKind};

    fn entry(path: &str, hash: &str) -> ModuleEntry {
        ModuleEntry { path: path.into(), hash: hash.into(), kind: ModuleKind::Function, environment: Environment::Isolate }
    }

    /// `a.js` line 1 is user code, line 2 Convex's wrapper; line 3 has no mapping.
    fn map_of_a() -> String {
        let mut builder = sourcemap::SourceMapBuilder::new(None);
        builder.add(0, 0, 2, 8, Some("../convex/a.ts"), None, false);
        builder.add(1, 0, 40, 2, Some("../node_modules/convex/src/server/impl/registration_impl.ts"), None, false);
        let mut json = Vec::new();
        builder.into_sourcemap().to_writer(&mut json).unwrap();
        String::from_utf8(json).unwrap()
    }

    #[test]
    fn user_frames_are_mapped_and_others_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).unwrap();
        let put = |hash: &str, source_map| CatalogWrite::PutModule { hash: hash.into(), source: String::new(), source_map };
        store.write(&[put("ha", Some(map_of_a())), put("hb", None)], &[]).unwrap();
        let maps = SourceMaps::new(&[entry("a.js", "ha"), entry("b.js", "hb")]);
        let frames = [
            "    at handler (a.js:1:5)",
            "    at invokeQuery (a.js:2:3)",
            "    at helper (a.js:3:1)",
            "    at b.js:7:9",
            "    at invoke (eval_script:34:49)",
        ];
        assert_eq!(
            maps.map_frames(&frames.join("\n"), &store),
            [
                "    at handler (../convex/a.ts:3:9)",
                // Generated code with no source keeps its place, as does a module without a map.
                "    at helper (a.js:3:1)",
                "    at <anonymous> (b.js:7:9)",
            ]
            .join("\n")
        );
    }

    #[test]
    fn frames_of_both_runtimes_parse() {
        let quickjs = Frame::parse("    at handler (errors.js:22:15)").unwrap();
        assert_eq!(quickjs, Frame { is_async: false, function: Some("handler"), file: "errors.js", line: 22, column: 15 });
        let v8_async = Frame::parse("    at async handler (dir/a.js:3:4)").unwrap();
        assert_eq!((v8_async.is_async, v8_async.function), (true, Some("handler")));
        // An anonymous async caller, as V8 prints it: no name, no parentheses.
        let v8_async_anonymous = Frame::parse("    at async dir/a.js:13:5").unwrap();
        assert_eq!((v8_async_anonymous.function, v8_async_anonymous.file), (None, "dir/a.js"));
        assert_eq!(v8_async_anonymous.render("../convex/dir/a.ts", 1, 2), "    at async <anonymous> (../convex/dir/a.ts:1:2)");
        let v8_anonymous = Frame::parse("    at dir/a.js:3:4").unwrap();
        assert_eq!((v8_anonymous.function, v8_anonymous.file), (None, "dir/a.js"));
        assert_eq!(v8_anonymous.render("../convex/dir/a.ts", 1, 2), "    at <anonymous> (../convex/dir/a.ts:1:2)");
        for not_a_frame in ["    at push (native)", "    at new Promise (<anonymous>)", "Error: boom", ""] {
            assert_eq!(Frame::parse(not_a_frame), None, "{not_a_frame}");
        }
    }
}
