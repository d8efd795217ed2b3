//! Which files of the functions folder become entry points, and their kinds.

mod common;

use common::{paths, Project};
use convect_bundler::{BundleError, Environment, ModuleKind};

const MODULE: &str = "export const x = 1;\n";

#[test]
fn entry_points_follow_the_convex_cli_rules() {
    let project = Project::new();
    for file in [
        "messages.ts",
        "plain.js",
        "esm.mjs",
        "view.tsx",
        "nested/deep/util.ts",
        "schema.ts",
        "http.ts",
        "crons.ts",
        "auth.config.ts",
    ] {
        project.file(file, MODULE);
    }
    for skipped in [
        "_generated/server.d.ts",
        "_generated/other.ts",
        ".hidden.ts",
        ".dotdir/inside.ts",
        "node_modules/pkg/index.js",
        "messages.test.ts",
        "types.d.ts",
        "with space.ts",
        "dir with space/a.ts",
        "#autosave.ts",
        "notes.md",
        "data.json",
        "nested/schema.ts",
        "nested/auth.config.ts",
        "component/convex.config.ts",
        "component/inner.ts",
    ] {
        project.file(skipped, MODULE);
    }
    project.file("script.ts", "const notAModule = 1;\n");

    let set = project.bundle().unwrap();
    let kinds: Vec<(&str, ModuleKind)> = set
        .modules
        .iter()
        .map(|m| (m.path.as_str(), m.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("auth.config.js", ModuleKind::AuthConfig),
            ("crons.js", ModuleKind::Crons),
            ("esm.js", ModuleKind::Function),
            ("http.js", ModuleKind::Http),
            ("messages.js", ModuleKind::Function),
            ("nested/deep/util.js", ModuleKind::Function),
            ("plain.js", ModuleKind::Function),
            ("schema.js", ModuleKind::Schema),
            ("view.js", ModuleKind::Function),
        ]
    );
}

#[test]
fn nested_special_names_are_ordinary_functions() {
    let project = Project::new();
    project
        .file("api/http.ts", MODULE)
        .file("jobs/crons.ts", MODULE);
    let set = project.bundle().unwrap();
    assert!(set.modules.iter().all(|m| m.kind == ModuleKind::Function));
    assert_eq!(paths(&set), ["api/http.js", "jobs/crons.js"]);
}

#[test]
fn code_shared_by_entries_is_a_dependency_chunk() {
    let project = Project::new();
    project
        .file("a.ts", "import { helper } from \"./helpers/x.test\";\nexport const a = helper;\n")
        .file("b.ts", "import { helper } from \"./helpers/x.test\";\nexport const b = helper;\n")
        .file("helpers/x.test.ts", "export const helper = { shared: 2 };\n");
    let set = project.bundle().unwrap();
    let deps: Vec<&str> = paths(&set).into_iter().filter(|p| p.starts_with("_deps/")).collect();
    assert_eq!(deps.len(), 1, "{:?}", paths(&set));
    assert_eq!(set.get(deps[0]).unwrap().kind, ModuleKind::Dependency);
    assert!(set.get(deps[0]).unwrap().source.contains("shared: 2"));
    let a = &set.get("a.js").unwrap().source;
    assert!(a.contains(&format!("\"./{}\"", deps[0])), "{a}");
}

#[test]
fn entry_imported_by_another_entry_keeps_its_kind() {
    let project = Project::new();
    project
        .file("a.ts", "import { b } from \"./b\";\nexport const a = b;\n")
        .file("b.ts", "export const b = 1;\n");
    let set = project.bundle().unwrap();
    assert_eq!(set.get("b.js").unwrap().kind, ModuleKind::Function);
}

#[test]
fn deps_folder_is_reserved() {
    let project = Project::new();
    project.file("_deps/x.ts", MODULE);
    let err = project.bundle().unwrap_err();
    assert!(matches!(err, BundleError::ReservedFolder { .. }), "{err}");
    assert!(err.to_string().contains("_deps"), "{err}");
}

#[test]
fn two_sources_for_one_module_name_are_rejected() {
    let project = Project::new();
    project.file("a.ts", MODULE).file("a.js", MODULE);
    let err = project.bundle().unwrap_err().to_string();
    assert!(err.contains("Two output files share the same path") && err.contains("a.js"), "{err}");
}

#[test]
fn use_node_files_are_bundled_for_node() {
    let project = Project::new();
    project
        .file("plain.ts", "export const p = 1;\n")
        .file("nodeOnly.ts", "\"use node\";\nimport { randomBytes } from \"node:crypto\";\nexport const n = () => randomBytes(4);\n");
    let set = project.bundle().unwrap();
    assert_eq!(set.get("plain.js").unwrap().environment, Environment::Isolate);
    let node = set.get("nodeOnly.js").unwrap();
    assert_eq!((node.kind, node.environment), (ModuleKind::Function, Environment::Node));
    assert!(node.source.contains("from \"node:crypto\""), "{}", node.source);
}

#[test]
fn use_node_is_refused_in_files_that_run_in_convex_runtime() {
    for file in ["schema.ts", "http.ts", "crons.ts", "auth.config.ts"] {
        let project = Project::new();
        project.file(file, "\"use node\";\nexport default {};\n");
        let err = project.bundle().unwrap_err();
        assert!(matches!(err, BundleError::NodeNotAllowed { .. }), "{err}");
        assert_eq!(err.to_string(), format!("\"use node\" directive is not allowed for {file}."));
    }
}

#[test]
fn missing_folder_is_reported() {
    let err = convect_bundler::bundle(std::path::Path::new("/nonexistent/convex")).unwrap_err();
    assert!(err.to_string().starts_with("/nonexistent/convex"), "{err}");
}
