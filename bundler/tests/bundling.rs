//! What esbuild makes of real code: npm packages (CommonJS, exports maps,
//! JSON), dynamic imports, the Convex app's own graph, and errors that point
//! at the offending source line. The same inputs `npx convex deploy` accepts.

mod common;

use common::{module, paths, sample_app, Project};
use convect_bundler::{BundleError, Environment, ModuleKind};

#[test]
fn commonjs_packages_are_bundled() {
    let project = Project::new();
    project
        .file("node_modules/legacy-cjs/package.json", r#"{"name": "legacy-cjs", "main": "lib/index.js"}"#)
        .file("node_modules/legacy-cjs/lib/index.js", "const helper = require('./helper');\nmodule.exports = { double: (x) => helper.twice(x) };\n")
        .file("node_modules/legacy-cjs/lib/helper.js", "exports.twice = (x) => x * 2;\n")
        .file("useLegacy.ts", "import legacy from \"legacy-cjs\";\nexport const four = legacy.double(2);\n");
    let set = project.bundle().unwrap();
    let source = &module(&set, "useLegacy.js").source;
    assert!(source.contains("x * 2") && !source.contains("from \"legacy-cjs\""), "{source}");
}

#[test]
fn exports_maps_pick_the_convex_then_import_conditions() {
    let project = Project::new();
    // Inside the functions folder: the project root's node_modules is the workspace's.
    project
        .file(
            "node_modules/@acme/kit/package.json",
            r#"{"name": "@acme/kit", "exports": {".": {"convex": "./convex.js", "require": "./cjs.js", "import": "./esm.js"},
                "./extra": {"import": "./extra.mjs", "default": "./extra.cjs"}}}"#,
        )
        .file("node_modules/@acme/kit/convex.js", "export const flavour = 'convex-build';\n")
        .file("node_modules/@acme/kit/cjs.js", "exports.flavour = 'cjs-build';\n")
        .file("node_modules/@acme/kit/esm.js", "export const flavour = 'esm-build';\n")
        .file("node_modules/@acme/kit/extra.mjs", "export const extra = 'extra-esm';\n")
        .file("node_modules/@acme/kit/extra.cjs", "exports.extra = 'extra-cjs';\n")
        .file("a.ts", "export { flavour } from \"@acme/kit\";\nexport { extra } from \"@acme/kit/extra\";\n");
    let set = project.bundle().unwrap();
    let source = &module(&set, "a.js").source;
    assert!(source.contains("convex-build") && source.contains("extra-esm"), "{source}");
    assert!(!source.contains("cjs-build") && !source.contains("esm-build"), "{source}");
}

#[test]
fn json_imports_become_values() {
    let project = Project::new();
    project
        .file("data/limits.json", r#"{"maxItems": 41}"#)
        .file("a.ts", "import limits from \"./data/limits.json\";\nexport const max = limits.maxItems + 1;\n");
    let set = project.bundle().unwrap();
    let source = &module(&set, "a.js").source;
    assert!(source.contains("41"), "{source}");
}

#[test]
fn dynamic_imports_are_accepted_computed_ones_included() {
    let project = Project::new();
    project
        .file("lazy.ts", "export const lazy = 'lazy value';\n")
        .file(
            "a.ts",
            "export const literal = () => import(\"./lazy\");\nexport const computed = (name: string) => import(name);\n",
        );
    let set = project.bundle().unwrap();
    let source = &module(&set, "a.js").source;
    assert!(source.contains("import(name)"), "a computed import stays for the runtime to resolve: {source}");
    assert!(set.modules.iter().any(|m| m.source.contains("lazy value")));
}

#[test]
fn convex_app_bundles_into_entries_and_chunks() {
    let project = sample_app();
    let set = project.bundle().unwrap();
    assert_eq!(module(&set, "messages.js").kind, ModuleKind::Function);
    assert_eq!(module(&set, "schema.js").kind, ModuleKind::Schema);
    assert!(set.modules.iter().all(|m| m.environment == Environment::Isolate));
    let messages = &module(&set, "messages.js").source;
    assert!(messages.contains("from \"./_deps/"), "convex is shared through a chunk: {messages}");
    assert!(!set.modules.iter().any(|m| m.source.contains("from \"convex/")), "{:?}", paths(&set));
}

#[test]
fn node_builtins_in_default_runtime_files_suggest_use_node() {
    let project = Project::new();
    project.file("a.ts", "import { readFileSync } from \"fs\";\nexport const read = () => readFileSync(\"x\");\n");
    let err = project.bundle().unwrap_err();
    assert!(matches!(err, BundleError::Esbuild { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("a.ts:1:") && text.contains("\"fs\""), "{text}");
    assert!(text.contains("without the \"use node\" directive"), "{text}");
}

#[test]
fn syntax_errors_have_file_line_and_column() {
    let project = Project::new();
    project.file("broken.ts", "export const ok = 1;\nexport const bad = (;\n");
    let text = project.bundle().unwrap_err().to_string();
    assert!(text.contains("broken.ts:2:20"), "{text}");
}

#[test]
fn unresolvable_imports_name_the_importing_file() {
    let project = Project::new();
    project.file("a.ts", "import { x } from \"./missing\";\nexport const a = x;\n");
    let text = project.bundle().unwrap_err().to_string();
    assert!(text.contains("a.ts:1:") && text.contains("./missing"), "{text}");
}

#[test]
fn hashes_are_blake3_of_source_and_stable_across_runs() {
    let project = sample_app();
    let first = project.bundle().unwrap();
    assert_eq!(first, project.bundle().unwrap());
    for m in &first.modules {
        assert_eq!(m.hash, blake3::hash(m.source.as_bytes()).to_hex().to_string());
    }
}

#[test]
fn editing_one_entry_changes_only_its_module() {
    let project = sample_app();
    project.file("other.ts", "import { query } from \"./_generated/server\";\nexport const q = query(async () => 1);\n");
    let before = project.bundle().unwrap();
    project.file("other.ts", "import { query } from \"./_generated/server\";\nexport const q = query(async () => 2);\n");
    let after = project.bundle().unwrap();
    let changed: Vec<&str> = after
        .modules
        .iter()
        .filter(|m| before.get(&m.path).is_none_or(|b| b.hash != m.hash))
        .map(|m| m.path.as_str())
        .collect();
    assert_eq!(changed, ["other.js"]);
}

#[test]
fn module_set_serializes_with_lowercase_kinds_and_environments() {
    let project = Project::new();
    project.file("a.ts", "\"use node\";\nexport const a = 1;\n");
    let json = serde_json::to_value(project.bundle().unwrap()).unwrap();
    assert_eq!(json["modules"][0]["kind"], "function");
    assert_eq!(json["modules"][0]["environment"], "node");
}

/// The `sources` of a module's map.
fn map_sources(set: &convect_bundler::ModuleSet, path: &str) -> Vec<String> {
    let map = module(set, path).source_map.as_deref().unwrap_or_else(|| panic!("{path} has no source map"));
    let json: serde_json::Value = serde_json::from_str(map).unwrap();
    assert!(json.get("sourcesContent").is_none(), "maps leave the sources out: {map}");
    assert!(json["mappings"].as_str().is_some_and(|m| !m.is_empty()), "{map}");
    serde_json::from_value(json["sources"].clone()).unwrap()
}

#[test]
fn source_maps_name_sources_as_the_convex_cli_does() {
    let project = sample_app();
    project.file("dir/nested.ts", "import { query } from \"../_generated/server\";\nexport const q = query(async () => 1);\n");
    let set = project.bundle().unwrap();
    // Relative to `<project>/out/<module's folder>`, with the folder's real name.
    assert_eq!(map_sources(&set, "messages.js"), ["../convex/_generated/api.js", "../convex/messages.ts"]);
    assert_eq!(map_sources(&set, "dir/nested.js"), ["../../convex/dir/nested.ts"]);
    // esbuild composes the maps `convex` ships, so its wrapper code is named by
    // its TypeScript source, which is how stack traces recognise and drop it.
    let chunk_sources: Vec<String> =
        set.modules.iter().filter(|m| m.path.starts_with("_deps/")).flat_map(|m| map_sources(&set, &m.path)).collect();
    assert!(chunk_sources.iter().any(|s| s.ends_with("convex/src/server/impl/registration_impl.ts")), "{chunk_sources:?}");
    assert!(set.modules.iter().all(|m| !m.source.contains("sourceMappingURL")));
}

#[test]
fn node_modules_get_source_maps_too() {
    let project = Project::new();
    project.file("dir/a.ts", "\"use node\";\nexport const a = 1;\n");
    let set = project.bundle().unwrap();
    assert_eq!(module(&set, "dir/a.js").environment, Environment::Node);
    assert_eq!(map_sources(&set, "dir/a.js"), ["../../convex/dir/a.ts"]);
}
