//! `convex.json`'s `node.externalPackages`: which packages `"use node"` bundles
//! import instead of containing, and which of them (at which installed version)
//! the set reports for the server to install, as the Convex CLI decides.

mod common;

use common::{module, Project};
use convect_bundler::{BundleError, NodeDependency};

/// A project with three installed packages: `greet` (whose peer dependency is
/// `peer-helper`), `peer-helper`, and `unused`; `package.json` depends on all
/// three, `greet` as a dev dependency.
fn project_with_packages(convex_json: &str) -> Project {
    let project = Project::with_own_packages();
    project
        .root_file(
            "package.json",
            r#"{"dependencies": {"peer-helper": "^2.0.0", "unused": "1.0.0"}, "devDependencies": {"greet": "^1.2.0"}}"#,
        )
        .root_file(
            "node_modules/greet/package.json",
            r#"{"name": "greet", "version": "1.2.3", "main": "index.js", "peerDependencies": {"peer-helper": "2"}}"#,
        )
        .root_file("node_modules/greet/index.js", "exports.greet = (who) => 'GREET-CODE ' + who;\n")
        .root_file("node_modules/greet/extra.js", "exports.extra = 'EXTRA-CODE';\n")
        .root_file("node_modules/peer-helper/package.json", r#"{"name": "peer-helper", "version": "2.0.1"}"#)
        .root_file("node_modules/peer-helper/index.js", "exports.help = 'HELPER-CODE';\n")
        .root_file("node_modules/unused/package.json", r#"{"name": "unused", "version": "1.0.0"}"#)
        .root_file("node_modules/unused/index.js", "exports.unused = 'UNUSED-CODE';\n");
    if !convex_json.is_empty() {
        project.root_file("convex.json", convex_json);
    }
    project
        .file(
            "nodeAction.ts",
            "\"use node\";\nimport { greet } from \"greet\";\nimport { extra } from \"greet/extra.js\";\nexport const hello = () => greet(extra);\n",
        )
        .file("isolate.ts", "import { greet } from \"greet\";\nexport const hello = () => greet(\"isolate\");\n");
    project
}

fn dependency(name: &str, version: &str) -> NodeDependency {
    NodeDependency { name: name.into(), version: version.into() }
}

#[test]
fn listed_packages_stay_imports_of_node_bundles_and_are_reported_with_their_installed_version() {
    let project = project_with_packages(r#"{"node": {"externalPackages": ["greet", "peer-helper", "unused"]}}"#);
    let set = project.bundle().unwrap();
    let node = &module(&set, "nodeAction.js").source;
    assert!(node.contains("from \"greet\"") && node.contains("from \"greet/extra.js\""), "{node}");
    assert!(!node.contains("GREET-CODE") && !node.contains("EXTRA-CODE"), "{node}");
    // Only Node.js installs packages: the default runtime's bundle contains them.
    let isolate = &module(&set, "isolate.js").source;
    assert!(isolate.contains("GREET-CODE"), "{isolate}");
    // `peer-helper` is not imported but is a peer of `greet`; `unused` is left out.
    assert_eq!(set.node_dependencies, vec![dependency("greet", "1.2.3"), dependency("peer-helper", "2.0.1")]);
}

#[test]
fn a_star_means_every_package_of_package_json() {
    let project = project_with_packages(r#"{"node": {"externalPackages": ["*"]}}"#);
    project.file("required.ts", "\"use node\";\nconst { unused } = require(\"unused\");\nexport const u = () => unused;\n");
    let set = project.bundle().unwrap();
    assert!(module(&set, "required.js").source.contains("__require(\"unused\")"));
    assert_eq!(
        set.node_dependencies,
        vec![dependency("greet", "1.2.3"), dependency("peer-helper", "2.0.1"), dependency("unused", "1.0.0")]
    );
}

#[test]
fn without_convex_json_everything_is_bundled() {
    let project = project_with_packages("");
    let set = project.bundle().unwrap();
    assert!(module(&set, "nodeAction.js").source.contains("GREET-CODE"));
    assert!(set.node_dependencies.is_empty());
}

#[test]
fn packages_package_json_does_not_install_from_the_registry_are_bundled() {
    let project = project_with_packages(r#"{"node": {"externalPackages": ["*", "not-a-dependency"]}}"#);
    project
        .root_file("package.json", r#"{"dependencies": {"greet": "file:../greet", "not-a-dependency-either": "1.0.0"}}"#)
        .root_file("node_modules/not-a-dependency/package.json", r#"{"name": "not-a-dependency", "version": "1.0.0"}"#)
        .root_file("node_modules/not-a-dependency/index.js", "exports.x = 'LISTED-CODE';\n")
        .file("listed.ts", "\"use node\";\nimport { x } from \"not-a-dependency\";\nexport const y = () => x;\n");
    let set = project.bundle().unwrap();
    assert!(module(&set, "nodeAction.js").source.contains("GREET-CODE"));
    assert!(module(&set, "listed.js").source.contains("LISTED-CODE"));
    assert!(set.node_dependencies.is_empty(), "{:?}", set.node_dependencies);
}

#[test]
fn a_malformed_convex_json_is_an_error_naming_it() {
    let project = project_with_packages(r#"{"node": {"externalPackages": "greet"}}"#);
    let err = project.bundle().unwrap_err();
    assert!(matches!(err, BundleError::ConvexJson { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&project.root.join("convex.json").display().to_string()), "{text}");
    assert!(text.contains("invalid convex.json"), "{text}");
}

#[test]
fn an_external_package_without_a_version_is_an_error_naming_its_package_json() {
    let project = project_with_packages(r#"{"node": {"externalPackages": ["greet"]}}"#);
    project.root_file("node_modules/greet/package.json", r#"{"name": "greet", "main": "index.js"}"#);
    let text = project.bundle().unwrap_err().to_string();
    assert!(text.contains("node_modules/greet/package.json") && text.contains("\"version\""), "{text}");
}
