//! npm packages: resolution through `exports` maps and `module` fields,
//! `_deps/` names, and a check that the real `convex` package's module graph
//! loads and works once rewritten.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::{module, sample_app, Project};
use convect_bundler::{ModuleKind, ModuleSet};

#[test]
fn exports_map_picks_the_import_condition() {
    let project = Project::new();
    project
        .root_file(
            "node_modules/@acme/kit/package.json",
            r#"{"name": "@acme/kit", "exports": {
                ".": {"require": "./cjs/index.js", "import": "./esm/index.js"},
                "./extra": {"import": "./esm/extra.mjs", "default": "./cjs/extra.js"}
            }}"#,
        )
        .root_file("node_modules/@acme/kit/esm/index.js", "export * from \"./inner.js\";\n")
        .root_file("node_modules/@acme/kit/esm/inner.js", "export const kit = 1;\n")
        .root_file("node_modules/@acme/kit/esm/extra.mjs", "export const extra = 2;\n")
        .root_file("node_modules/legacy/package.json", r#"{"name": "legacy", "main": "cjs.js", "module": "esm.js"}"#)
        .root_file("node_modules/legacy/esm.js", "export default 3;\n")
        .file(
            "a.ts",
            "export { kit } from \"@acme/kit\";\nexport { extra } from \"@acme/kit/extra\";\nexport { default as legacy } from \"legacy\";\n",
        );
    let set = project.bundle().unwrap();
    let a = &module(&set, "a.js").source;
    assert!(a.contains("\"_deps/@acme/kit/esm/index.js\""), "{a}");
    assert!(a.contains("\"_deps/@acme/kit/esm/extra.mjs\""), "{a}");
    assert!(a.contains("\"_deps/legacy/esm.js\""), "{a}");
    let index = module(&set, "_deps/@acme/kit/esm/index.js");
    assert_eq!(index.kind, ModuleKind::Dependency);
    assert!(
        index.source.contains("\"_deps/@acme/kit/esm/inner.js\""),
        "{}",
        index.source
    );
}

#[test]
fn convex_resolves_to_its_esm_build() {
    let Some(project) = sample_app() else { return };
    let set = project.bundle().unwrap();
    let server = &module(&set, "_generated/server.js").source;
    assert!(
        server.contains("from \"_deps/convex/dist/esm/server/index.js\""),
        "{server}"
    );
    let messages = module(&set, "messages.js");
    assert_eq!(messages.kind, ModuleKind::Function);
    assert!(messages
        .source
        .contains("from \"_deps/convex/dist/esm/values/index.js\""));
    assert!(messages.source.contains("from \"_generated/server.js\""));
    assert!(messages.source.contains("from \"_generated/api.js\""));
    assert_eq!(module(&set, "schema.js").kind, ModuleKind::Schema);
    assert!(set.modules.iter().all(|m| !m.path.contains("/cjs/")));
}

/// Writes every module under its canonical name and has Node import the
/// function module through a loader that treats each specifier as a module
/// name and nothing else, so any incoherence in the rewritten graph fails.
#[test]
fn module_set_of_a_convex_app_loads_and_registers_functions() {
    let Some(project) = sample_app() else { return };
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("skipped: node is not installed");
        return;
    }
    let set = project.bundle().unwrap();
    let out = project.root.join("out");
    write_modules(&set, &out.join("modules"));
    fs::write(out.join("loader.mjs"), LOADER).unwrap();
    fs::write(out.join("check.mjs"), CHECK).unwrap();
    let run = Command::new("node")
        .arg("check.mjs")
        .current_dir(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(stdout.trim(), "ok");
}

fn write_modules(set: &ModuleSet, dir: &Path) {
    for m in &set.modules {
        let path = dir.join(&m.path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, &m.source).unwrap();
    }
}

const LOADER: &str = r#"
const modules = new URL("./modules/", import.meta.url);
export async function resolve(specifier, context, next) {
  if (!context.parentURL?.startsWith(modules.href)) return next(specifier, context);
  if (specifier.startsWith(".") || specifier.startsWith("/") || specifier.includes(":")) {
    throw new Error(`non-canonical specifier ${specifier} in ${context.parentURL}`);
  }
  return { url: new URL(specifier, modules).href, format: "module", shortCircuit: true };
}
"#;

const CHECK: &str = r#"
import { register } from "node:module";
register("./loader.mjs", import.meta.url);
const mod = await import("./modules/messages.js");
const schema = await import("./modules/schema.js");
const checks = {
  listIsQuery: mod.list.isQuery === true && mod.list.isPublic === true,
  listInvokes: typeof mod.list.invokeQuery === "function",
  sendIsMutation: mod.send.isMutation === true,
  clearIsInternal: mod.clear.isInternal === true,
  actionIsAction: mod.sendAndCount.isAction === true,
  schemaHasTable: "messages" in schema.default.tables,
};
const failed = Object.entries(checks).filter(([, ok]) => !ok).map(([name]) => name);
console.log(failed.length ? `failed: ${failed.join(", ")}` : "ok");
"#;
