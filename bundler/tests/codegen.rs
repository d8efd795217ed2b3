//! The `_generated` files: their content, idempotence, and that a Convex app
//! type-checks against them with the TypeScript compiler.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::{node_modules, sample_app, Project};
use convect_bundler::codegen;

const GENERATED: [&str; 5] = [
    "server.js",
    "server.d.ts",
    "api.js",
    "api.d.ts",
    "dataModel.d.ts",
];

fn generated(project: &Project, name: &str) -> String {
    fs::read_to_string(project.functions.join("_generated").join(name)).unwrap()
}

#[test]
fn writes_all_files_then_only_changed_ones() {
    let project = Project::new();
    project.file("a.ts", "export const x = 1;\n");
    let written = codegen(&project.functions).unwrap();
    let names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_str().unwrap())
        .collect();
    assert_eq!(names, GENERATED);
    assert_eq!(codegen(&project.functions).unwrap(), Vec::<PathBuf>::new());
    project.file("b.ts", "export const y = 1;\n");
    let written = codegen(&project.functions).unwrap();
    assert_eq!(written, [project.functions.join("_generated/api.d.ts")]);
}

#[test]
fn api_exports_components_as_convex_codegen_does() {
    let project = Project::new();
    project.file("a.ts", "export const x = 1;\n");
    codegen(&project.functions).unwrap();
    let generated = project.functions.join("_generated");
    let js = fs::read_to_string(generated.join("api.js")).unwrap();
    assert!(js.contains("export const components = componentsGeneric();"), "{js}");
    let dts = fs::read_to_string(generated.join("api.d.ts")).unwrap();
    assert!(dts.contains("export declare const components: {};"), "{dts}");
}

#[test]
fn api_types_cover_every_function_module() {
    let project = Project::new();
    for file in [
        "messages.ts",
        "lib/util-fns.ts",
        "http.ts",
        "crons.ts",
        "schema.ts",
        "auth.config.ts",
        "esm.mjs",
    ] {
        project.file(file, "export const x = 1;\n");
    }
    codegen(&project.functions).unwrap();
    let api = generated(&project, "api.d.ts");
    for expected in [
        "import type * as m_messages from \"../messages.js\";",
        "import type * as m_lib_util_fns from \"../lib/util-fns.js\";",
        "import type * as m_esm from \"../esm.mjs\";",
        "\"lib/util-fns\": typeof m_lib_util_fns;",
        "\"http\": typeof m_http;",
        "\"crons\": typeof m_crons;",
    ] {
        assert!(api.contains(expected), "missing {expected:?} in\n{api}");
    }
    assert!(!api.contains("schema") && !api.contains("auth"), "{api}");
}

#[test]
fn data_model_comes_from_the_schema_when_there_is_one() {
    let project = Project::new();
    project.file("a.ts", "export const x = 1;\n");
    codegen(&project.functions).unwrap();
    assert!(generated(&project, "dataModel.d.ts").contains("= AnyDataModel;"));
    project.file("schema.ts", "export default {};\n");
    codegen(&project.functions).unwrap();
    let data_model = generated(&project, "dataModel.d.ts");
    assert!(
        data_model.contains("DataModelFromSchemaDefinition<typeof schema>"),
        "{data_model}"
    );
    assert!(
        data_model.contains("import schema from \"../schema.js\";"),
        "{data_model}"
    );
}

const TSCONFIG: &str = r#"{
  "compilerOptions": {
    "target": "ES2022",
    "lib": ["ES2022", "DOM"],
    "module": "ESNext",
    "moduleResolution": "Bundler",
    "strict": true,
    "isolatedModules": true,
    "noEmit": true
  },
  "include": ["convex"]
}
"#;

/// Runs `tsc` over the project, or returns `None` when it is not installed.
fn type_check(project: &Project) -> Option<(bool, String)> {
    let tsc = node_modules().join("typescript/bin/tsc");
    if !tsc.is_file() {
        eprintln!("skipped: {} missing", tsc.display());
        return None;
    }
    project.root_file("tsconfig.json", TSCONFIG);
    let run = Command::new("node")
        .arg(tsc)
        .arg("-p")
        .arg(&project.root)
        .output();
    let Ok(run) = run else {
        eprintln!("skipped: node is not installed");
        return None;
    };
    Some((
        run.status.success(),
        String::from_utf8_lossy(&run.stdout).into_owned(),
    ))
}

#[test]
fn sample_app_type_checks() {
    let project = sample_app();
    let Some((ok, output)) = type_check(&project) else {
        return;
    };
    assert!(ok, "{output}");
}

#[test]
fn wrong_document_shape_fails_type_check() {
    let project = sample_app();
    let messages = fs::read_to_string(project.functions.join("messages.ts")).unwrap();
    let broken = messages.replace(
        "{ author: args.author, body: args.body }",
        "{ wrongField: 1 }",
    );
    assert_ne!(broken, messages);
    project.file("messages.ts", &broken);
    let Some((ok, output)) = type_check(&project) else {
        return;
    };
    assert!(!ok);
    assert!(output.contains("'wrongField' does not exist"), "{output}");
}

#[test]
fn app_without_schema_type_checks() {
    let project = Project::new();
    project.file(
        "notes.ts",
        r#"import { query } from "./_generated/server";
import type { Doc, Id } from "./_generated/dataModel";
export const get = query({
  handler: async (ctx): Promise<Doc<"notes"> | null> => {
    const id = "" as Id<"notes">;
    return await ctx.db.get(id);
  },
});
"#,
    );
    codegen(&project.functions).unwrap();
    let Some((ok, output)) = type_check(&project) else {
        return;
    };
    assert!(ok, "{output}");
}
