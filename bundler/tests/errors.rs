//! Errors name the file (and line:column) the author has to fix.

mod common;

use common::Project;
use convect_bundler::{BundleError, ImportProblem};

fn bundle_error(project: &Project) -> (BundleError, String) {
    let err = project.bundle().unwrap_err();
    let message = err.to_string();
    (err, message)
}

#[test]
fn syntax_error_has_file_line_and_column() {
    let project = Project::new();
    project.file("bad.ts", "export const a = 1;\n\nexport const b = ;\n");
    let (err, message) = bundle_error(&project);
    let BundleError::Syntax { location, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((location.line, location.column), (3, 18));
    let expected = format!(
        "{}:3:18: syntax error",
        project.functions.join("bad.ts").display()
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[test]
fn early_errors_from_semantic_analysis_are_syntax_errors() {
    let project = Project::new();
    project.file("dup.ts", "export const a = 1;\nlet a = 2;\n");
    let (err, message) = bundle_error(&project);
    assert!(matches!(err, BundleError::Syntax { .. }), "{err:?}");
    assert!(
        message.contains("dup.ts:1:14: syntax error: Identifier `a` has already been declared"),
        "{message}"
    );
}

#[test]
fn unresolvable_relative_import_names_the_importing_file() {
    let project = Project::new();
    project.file(
        "lib/use.ts",
        "import { x } from \"../missing\";\nexport const y = x;\n",
    );
    let (err, message) = bundle_error(&project);
    assert!(
        matches!(err, BundleError::Import { ref specifier, problem: ImportProblem::NotFound(_), .. } if specifier == "../missing"),
        "{err:?}"
    );
    let expected = format!(
        "{}:1:19: cannot import \"../missing\"",
        project.functions.join("lib/use.ts").display()
    );
    assert!(message.starts_with(&expected), "{message}");
}

#[test]
fn unknown_package_is_not_found() {
    let project = Project::new();
    project.file("a.js", "export { x } from \"no-such-package-anywhere\";\n");
    let (err, message) = bundle_error(&project);
    assert!(
        matches!(
            err,
            BundleError::Import {
                problem: ImportProblem::NotFound(_),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(message.contains("a.js:1:19"), "{message}");
}

#[test]
fn node_builtins_are_rejected() {
    for specifier in ["fs", "node:crypto", "path"] {
        let project = Project::new();
        project.file(
            "files.ts",
            &format!("import * as m from \"{specifier}\";\nexport const k = m;\n"),
        );
        let (err, message) = bundle_error(&project);
        assert!(
            matches!(
                err,
                BundleError::Import {
                    problem: ImportProblem::NodeBuiltin,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(message.contains("files.ts:1:20"), "{message}");
        assert!(
            message.contains("Node built-ins are not available"),
            "{message}"
        );
    }
}

#[test]
fn npm_package_named_like_a_builtin_wins() {
    let project = Project::new();
    project
        .root_file(
            "node_modules/events/package.json",
            r#"{"name": "events", "module": "esm.js"}"#,
        )
        .root_file(
            "node_modules/events/esm.js",
            "export class EventEmitter {}\n",
        )
        .file("a.js", "export { EventEmitter } from \"events\";\n");
    let set = project.bundle().unwrap();
    assert!(set.get("_deps/events/esm.js").is_some());
}

#[test]
fn non_literal_dynamic_import_is_rejected() {
    let project = Project::new();
    project.file(
        "dyn.ts",
        "export async function load(name: string) {\n  return await import(name);\n}\n",
    );
    let (err, message) = bundle_error(&project);
    let BundleError::DynamicImport { location } = &err else {
        panic!("{err:?}")
    };
    assert_eq!((location.line, location.column), (2, 23));
    assert!(message.contains("dyn.ts:2:23"), "{message}");
}

#[test]
fn commonjs_package_is_rejected_with_its_path() {
    let project = Project::new();
    project
        .root_file(
            "node_modules/old/package.json",
            r#"{"name": "old", "main": "index.js"}"#,
        )
        .root_file(
            "node_modules/old/index.js",
            "module.exports = { x: require(\"./x\") };\n",
        )
        .file("a.js", "import old from \"old\";\nexport const o = old;\n");
    let (err, message) = bundle_error(&project);
    assert!(matches!(err, BundleError::CommonJs { .. }), "{err:?}");
    assert!(message.contains("node_modules/old/index.js"), "{message}");
}

#[test]
fn commonjs_entry_point_is_rejected() {
    let project = Project::new();
    project.file("legacy.cjs", "exports.x = 1;\n");
    let (err, _) = bundle_error(&project);
    assert!(matches!(err, BundleError::CommonJs { .. }), "{err:?}");
}

#[test]
fn invalid_json_has_line_and_column() {
    let project = Project::new();
    project
        .file("a.ts", "import d from \"./d.json\";\nexport const v = d;\n")
        .file("d.json", "{\n  \"a\": 1,\n  oops\n}\n");
    let (err, message) = bundle_error(&project);
    assert!(
        matches!(err, BundleError::Json { ref location, .. } if location.line == 3),
        "{err:?}"
    );
    assert!(message.contains("d.json:3:"), "{message}");
}

#[test]
fn non_code_files_cannot_be_imported() {
    let project = Project::new();
    project
        .file("a.ts", "import \"./style.css\";\nexport {};\n")
        .file("style.css", "a {}\n");
    let (err, _) = bundle_error(&project);
    assert!(
        matches!(
            err,
            BundleError::Import {
                problem: ImportProblem::UnsupportedFileType,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn two_copies_of_a_package_file_are_reported() {
    let project = Project::new();
    project
        .root_file(
            "node_modules/dup/package.json",
            r#"{"name": "dup", "type": "module"}"#,
        )
        .root_file("node_modules/dup/index.js", "export const v = 1;\n")
        .root_file(
            "node_modules/user/package.json",
            r#"{"name": "user", "type": "module"}"#,
        )
        .root_file("node_modules/user/index.js", "export { v } from \"dup\";\n")
        .root_file(
            "node_modules/user/node_modules/dup/package.json",
            r#"{"name": "dup", "type": "module"}"#,
        )
        .root_file(
            "node_modules/user/node_modules/dup/index.js",
            "export const v = 2;\n",
        )
        .file(
            "a.js",
            "export { v } from \"dup\";\nexport { v as w } from \"user\";\n",
        );
    let (err, message) = bundle_error(&project);
    assert!(
        matches!(
            err,
            BundleError::Import {
                problem: ImportProblem::NameTaken { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(message.contains("_deps/dup/index.js"), "{message}");
}
