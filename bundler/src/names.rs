//! Canonical module names: the strings that identify modules in a
//! [`ModuleSet`](crate::ModuleSet) and that every import specifier is
//! rewritten to.
//!
//! * A file inside the functions folder: its relative path with forward
//!   slashes and the extension replaced by `.js` (`lib/util.ts` → `lib/util.js`).
//! * A file inside a `node_modules` folder: `_deps/` followed by the path after
//!   the last `node_modules` segment, i.e. `_deps/<package>/<path in package>`
//!   (`_deps/convex/dist/esm/server/index.js`, `_deps/@scope/pkg/index.js`).
//!   Taking the last segment keeps names short under pnpm's nested layout; two
//!   different copies of one package file are reported as a collision.
//! * Any other file outside the folder: `_deps/_local/<n>/<path>`, where `n` is
//!   how many levels above the functions folder the common ancestor lies and
//!   `<path>` is the file's path below that ancestor, extension replaced by
//!   `.js` (`../shared/x.ts` → `_deps/_local/1/shared/x.js`). Counting levels
//!   rather than naming the ancestor keeps names independent of where the
//!   project is checked out and distinct for different files.

use std::path::{Component, Path};

/// Assigns canonical names relative to one functions folder; `root` must be
/// canonical (symlinks resolved), like the paths the resolver returns.
pub(crate) struct Namer<'r> {
    root: &'r Path,
}

impl<'r> Namer<'r> {
    pub fn new(root: &'r Path) -> Self {
        Self { root }
    }

    pub fn name(&self, file: &Path) -> String {
        if let Some(inside) = self.inside_root(file) {
            return with_js_extension(&inside);
        }
        if let Some(in_package) = after_last_node_modules(file) {
            return format!("_deps/{in_package}");
        }
        self.outside_name(file)
    }

    fn inside_root(&self, file: &Path) -> Option<String> {
        let relative = file.strip_prefix(self.root).ok()?;
        let has_node_modules = relative
            .components()
            .any(|c| c.as_os_str() == "node_modules");
        (!has_node_modules).then(|| slash_join(relative.components()))
    }

    fn outside_name(&self, file: &Path) -> String {
        let mut levels = 0;
        let mut ancestor = self.root;
        while !file.starts_with(ancestor) {
            levels += 1;
            ancestor = ancestor.parent().unwrap_or(ancestor);
        }
        let below = file.strip_prefix(ancestor).unwrap_or(file);
        let below = with_js_extension(&slash_join(below.components()));
        format!("_deps/_local/{levels}/{below}")
    }
}

fn after_last_node_modules(file: &Path) -> Option<String> {
    let components: Vec<Component> = file.components().collect();
    let last = components
        .iter()
        .rposition(|c| c.as_os_str() == "node_modules")?;
    Some(slash_join(components[last + 1..].iter().copied()))
}

fn slash_join<'a>(components: impl Iterator<Item = Component<'a>>) -> String {
    components
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

/// Replaces the extension of the last segment with `.js`, because the module
/// holds JavaScript whatever its source language.
fn with_js_extension(path: &str) -> String {
    let file_start = path.rfind('/').map_or(0, |i| i + 1);
    let stem_end = match path[file_start..].rfind('.') {
        Some(dot) if dot > 0 => file_start + dot,
        _ => path.len(),
    };
    format!("{}.js", &path[..stem_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_location() {
        let namer = Namer::new(Path::new("/p/app/convex"));
        let name = |p: &str| namer.name(Path::new(p));
        assert_eq!(name("/p/app/convex/lib/util.ts"), "lib/util.js");
        assert_eq!(name("/p/app/convex/data.json"), "data.js");
        assert_eq!(
            name("/p/app/node_modules/@s/pkg/dist/i.mjs"),
            "_deps/@s/pkg/dist/i.mjs"
        );
        assert_eq!(
            name("/p/node_modules/.pnpm/x@1/node_modules/x/i.js"),
            "_deps/x/i.js"
        );
        assert_eq!(name("/p/app/shared/x.ts"), "_deps/_local/1/shared/x.js");
        assert_eq!(name("/p/x.ts"), "_deps/_local/2/x.js");
        assert_eq!(name("/p/app/x.ts"), "_deps/_local/1/x.js");
    }
}
