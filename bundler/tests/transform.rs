//! TypeScript lowering, specifier rewriting for every import form, JSON
//! modules, and content hashes.

mod common;

use common::{module, paths, Project};
use convect_bundler::{ModuleKind, ModuleSet};

fn leaf(name: &str) -> String {
    format!("export const {name} = \"{name}\";\nexport default \"{name}-default\";\n")
}

fn project_with_every_import_form() -> Project {
    let project = Project::new();
    project.file(
        "main.ts",
        r#"import a from "./lib/a";
import * as b from "./lib/b";
import { c as cee } from "./lib/c.js";
import "./lib/d";
import e, { e as eNamed } from "./lib/e";
import { type Shape, f } from "./lib/f";
import type { Only } from "../shared/types";
import data from "./data.json" with { type: "json" };
import shared from "../shared/s";
export * from "./lib/g";
export * as h from "./lib/h";
export { i } from "./lib/i";
export { default as j } from "./lib/j";
export type { Only as Alias } from "../shared/types";

const shape: Shape = { side: 2 };
export const all = [a, b, cee, e, eNamed, f, data, shared, shape];
export async function lazy(): Promise<unknown[]> {
  return [await import("./lib/k"), await import(`./lib/l`, { with: {} })];
}
"#,
    );
    for name in ["a", "b", "c", "d", "e", "g", "h", "i", "j", "k", "l"] {
        project.file(&format!("lib/{name}.ts"), &leaf(name));
    }
    project
        .file(
            "lib/f.ts",
            "export interface Shape { side: number }\nexport const f = 1;\n",
        )
        .file("data.json", r#"{"answer": 42, "list": [true, null, "x"]}"#)
        .root_file("shared/s.ts", "export default \"shared\";\n")
        // Outside the folder, so only an import could bring it into the set.
        .root_file(
            "shared/types.ts",
            "export type Only = string;\nexport const unused = 0;\n",
        );
    project
}

#[test]
fn every_import_form_is_rewritten_to_canonical_names() {
    let set = project_with_every_import_form().bundle().unwrap();
    let main = &module(&set, "main.js").source;
    for expected in [
        r#"import a from "lib/a.js""#,
        r#"import * as b from "lib/b.js""#,
        r#"import { c as cee } from "lib/c.js""#,
        r#"import "lib/d.js""#,
        r#"import e, { e as eNamed } from "lib/e.js""#,
        r#"import { f } from "lib/f.js""#,
        r#"import data from "data.js";"#,
        r#"import shared from "_deps/_local/1/shared/s.js""#,
        r#"export * from "lib/g.js""#,
        r#"export * as h from "lib/h.js""#,
        r#"export { i } from "lib/i.js""#,
        r#"export { default as j } from "lib/j.js""#,
        r#"import("lib/k.js")"#,
        r#"import("lib/l.js")"#,
    ] {
        assert!(main.contains(expected), "missing {expected:?} in\n{main}");
    }
    assert!(!main.contains("./"), "relative specifier left in\n{main}");
}

#[test]
fn type_only_imports_vanish_with_their_modules() {
    let set = project_with_every_import_form().bundle().unwrap();
    assert!(!module(&set, "main.js").source.contains("types"));
    assert!(
        set.get("_deps/_local/1/shared/types.js").is_none(),
        "{:?}",
        paths(&set)
    );
}

#[test]
fn every_specifier_names_a_module_of_the_set() {
    let set = project_with_every_import_form().bundle().unwrap();
    for m in &set.modules {
        for specifier in specifiers(&m.source) {
            assert!(
                set.get(&specifier).is_some(),
                "{}: {specifier} not in set",
                m.path
            );
        }
    }
}

/// Quoted strings following `from`, `import` or `import(` in generated code.
fn specifiers(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for marker in ["from \"", "import \"", "import(\""] {
        for (start, _) in source.match_indices(marker) {
            let rest = &source[start + marker.len()..];
            found.push(rest[..rest.find('"').unwrap()].to_string());
        }
    }
    found
}

#[test]
fn typescript_is_lowered_to_plain_javascript() {
    let project = Project::new();
    project.file(
        "t.ts",
        r#"enum Color { Red, Green }
namespace Geometry { export const unit = 1; }
interface Point { x: number; y: number }
type Pair<T> = [T, T];
abstract class Base<T> {
  constructor(private readonly value: T, public label?: string) {}
  abstract describe(): string;
  get(): T { return this.value!; }
}
export class Named extends Base<string> {
  describe(): string { return `${this.get() as string}`; }
}
export function add<T extends number>(a: T, b: T): number { return a + b; }
export const pair: Pair<number> = [Color.Green, Geometry.unit];
export const p = { x: 1, y: 2 } satisfies Point;
declare const ambient: number;
export const big = 10n ** 3n, maybe = (globalThis as any)?.nothing?.deeper ?? "none";
"#,
    );
    let set = project.bundle().unwrap();
    let js = &module(&set, "t.js").source;
    for gone in [
        "interface",
        "type Pair",
        "satisfies",
        "private",
        "abstract",
        "declare",
        ": number",
        "<T",
    ] {
        assert!(!js.contains(gone), "{gone:?} left in\n{js}");
    }
    for kept in [
        "export class Named",
        "this.value = value",
        "10n ** 3n",
        "?.nothing?.deeper ?? \"none\"",
    ] {
        assert!(js.contains(kept), "{kept:?} missing in\n{js}");
    }
}

#[test]
fn json_becomes_a_default_export() {
    let set = project_with_every_import_form().bundle().unwrap();
    let data = module(&set, "data.js");
    assert_eq!(data.kind, ModuleKind::Dependency);
    assert_eq!(
        data.source,
        "export default {\"answer\":42,\"list\":[true,null,\"x\"]};\n"
    );
}

#[test]
fn hashes_are_blake3_of_source_and_stable_across_runs() {
    let project = project_with_every_import_form();
    let first = project.bundle().unwrap();
    let second = project.bundle().unwrap();
    assert_eq!(first, second);
    for m in &first.modules {
        assert_eq!(
            m.hash,
            blake3::hash(m.source.as_bytes()).to_hex().to_string()
        );
    }
    let mut sorted = paths(&first);
    sorted.sort();
    assert_eq!(paths(&first), sorted);
}

#[test]
fn editing_one_file_changes_only_its_hash() {
    let project = project_with_every_import_form();
    let before = project.bundle().unwrap();
    project.file("lib/a.ts", &leaf("a").replace("\"a\"", "\"changed\""));
    let after = project.bundle().unwrap();
    let changed: Vec<&str> = before
        .modules
        .iter()
        .zip(&after.modules)
        .filter(|(x, y)| x.hash != y.hash)
        .map(|(x, _)| x.path.as_str())
        .collect();
    assert_eq!(changed, ["lib/a.js"]);
}

#[test]
fn module_set_serializes_with_lowercase_kinds() {
    let set = project_with_every_import_form().bundle().unwrap();
    let json = serde_json::to_value(&set).unwrap();
    let kinds: Vec<&str> = json["modules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"function") && kinds.contains(&"dependency"),
        "{kinds:?}"
    );
    let back: ModuleSet = serde_json::from_value(json).unwrap();
    assert_eq!(back, set);
    assert_eq!(
        serde_json::to_string(&ModuleKind::AuthConfig).unwrap(),
        "\"authconfig\""
    );
}
