//! External packages of `"use node"` bundles (`convex.json`'s
//! `node.externalPackages`): the Node.js runtime installs a bundle's packages with
//! npm before loading it, once per set (concurrent calls wait for one install; a
//! restart and another bundle reuse it), links them as the bundle's
//! `node_modules` so that both `import` and esbuild's `require` shim find them,
//! and reports a failed install with npm's own error. No network: the package is
//! a tarball the test packs, named by a `file:` version.

use convect_bundler::NodeDependency;
use convect_engine::runtime::{Completion, Execution, Host, NodeBundle, NodeConfig, NodePool, SyscallError, SyscallResult, UdfKind};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// Imports the package as an ES module and requires it through esbuild's shim,
/// as bundles with external packages do.
const ACTIONS: &str = r#"
import { greet } from "fake-dep";
var __require = ((x) => typeof require !== "undefined" ? require : x)(function () { throw Error("no require"); });
const required = __require("fake-dep");
export const hello = {
  isAction: true,
  isPublic: true,
  invokeAction: async (_requestId, argsJson) => JSON.stringify([greet(JSON.parse(argsJson)[0].name), required.greet("cjs")]),
  exportArgs: () => "{}",
};
"#;

/// A package `fake-dep@1.0.0` packed into `<dir>/fake-dep-1.0.0.tgz`, whose
/// install script appends a line to `<dir>/installs` (so the test counts npm runs).
fn pack_fake_dep(dir: &Path) -> PathBuf {
    let package = dir.join("fake-dep");
    std::fs::create_dir_all(&package).unwrap();
    let installs = dir.join("installs");
    let script = format!("node -e \"require('fs').appendFileSync('{}', 'installed\\n')\"", installs.display());
    let manifest = json!({ "name": "fake-dep", "version": "1.0.0", "main": "index.js", "scripts": { "postinstall": script } });
    std::fs::write(package.join("package.json"), manifest.to_string()).unwrap();
    std::fs::write(package.join("index.js"), "exports.greet = (who) => `hello ${who} from fake-dep`;\n").unwrap();
    let packed = Command::new("npm").args(["pack", "--silent", "--pack-destination"]).arg(dir).current_dir(&package).output().unwrap();
    assert!(packed.status.success(), "npm pack failed: {}", String::from_utf8_lossy(&packed.stderr));
    dir.join("fake-dep-1.0.0.tgz")
}

fn installs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("installs")).map(|s| s.lines().count()).unwrap_or(0)
}

fn bundle(tag: &str, dependencies: Vec<NodeDependency>) -> Arc<NodeBundle> {
    let sources: BTreeMap<String, String> = [("actions.js".to_owned(), format!("{ACTIONS}// {tag}\n"))].into();
    let mut key = blake3::Hasher::new();
    key.update(tag.as_bytes());
    for d in &dependencies {
        key.update(format!("{}@{}", d.name, d.version).as_bytes());
    }
    Arc::new(NodeBundle { key: key.finalize().to_hex().to_string(), sources, dependencies })
}

fn pool(scratch: &Path) -> NodePool {
    NodePool::new(NodeConfig {
        node: None,
        warm_workers: 2,
        max_concurrent: NodeConfig::DEFAULT_MAX_CONCURRENT,
        scratch_dir: scratch.to_path_buf(),
    })
}

fn exec() -> Execution {
    Execution {
        kind: UdfKind::Action,
        module: "actions.js".into(),
        export: "hello".into(),
        args_json: json!([{ "name": "convect" }]).to_string(),
        request_id: "req-1".into(),
        seed: 1,
        now_ms: 0.0,
        time_limit: Duration::from_secs(60),
        env: Arc::default(),
        identity: Default::default(),
    }
}

struct NoHost;

impl Host for NoHost {
    fn syscall(&mut self, op: &str, _args: Json) -> SyscallResult {
        Err(SyscallError::new(format!("unexpected syscall {op}")))
    }

    fn async_syscall(&mut self, op: &str, args: Json, done: Completion) {
        done.complete(self.syscall(op, args));
    }
}

async fn hello(pool: &NodePool, bundle: &Arc<NodeBundle>) -> Json {
    let outcome = pool.run(bundle, exec(), NoHost).await.expect("below the concurrency limit");
    serde_json::from_str(&outcome.result.unwrap_or_else(|f| panic!("{f}"))).unwrap()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_are_installed_once_per_set_and_found_by_import_and_require() {
    let dir = tempfile::tempdir().unwrap();
    let tarball = pack_fake_dep(dir.path());
    let dependencies = vec![NodeDependency { name: "fake-dep".into(), version: format!("file:{}", tarball.display()) }];
    let scratch = dir.path().join("node");
    let expected = json!(["hello convect from fake-dep", "hello cjs from fake-dep"]);

    let first = bundle("first", dependencies.clone());
    let pool1 = pool(&scratch);
    let (a, b) = tokio::join!(hello(&pool1, &first), hello(&pool1, &first));
    assert_eq!((a, b), (expected.clone(), expected.clone()));
    assert_eq!(installs(dir.path()), 1, "two calls at once share one install");
    let bundle_dir = scratch.join(&first.key);
    let link = std::fs::read_link(bundle_dir.join("node_modules")).unwrap();
    assert!(link.is_relative() && link.starts_with("../packages"), "{}", link.display());

    // A restart, and another bundle needing the same packages, reuse the install.
    drop(pool1);
    let pool2 = pool(&scratch);
    assert_eq!(hello(&pool2, &first).await, expected);
    assert_eq!(hello(&pool2, &bundle("second", dependencies)).await, expected);
    assert_eq!(installs(dir.path()), 1);
    let sets = entries(&scratch.join("packages"));
    assert_eq!(sets.len(), 1, "{sets:?}: no temporary folder is left");
}

#[tokio::test]
async fn a_failed_install_fails_loading_with_npms_error_and_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-dep-1.0.0.tgz");
    let dependencies = vec![NodeDependency { name: "missing-dep".into(), version: format!("file:{}", missing.display()) }];
    let scratch = dir.path().join("node");
    let pool = pool(&scratch);
    let failure =
        pool.analyze(&bundle("broken", dependencies), vec!["actions.js".into()], Arc::default()).await.expect_err("the install fails");
    let message = failure.message;
    assert!(message.contains("npm install missing-dep@file:"), "{message}");
    // npm's own explanation, from its stderr.
    assert!(message.contains("npm error") && message.contains("missing-dep-1.0.0.tgz"), "{message}");
    assert_eq!(entries(&scratch.join("packages")), Vec::<String>::new());
}
