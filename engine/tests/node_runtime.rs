//! The Node.js runtime on its own: a `NodePool` over a hand-written bundle (an
//! entry module importing a chunk, as esbuild splits them) runs actions against a
//! test `Host`. Covers results, module analysis, the syscall round trip, console
//! lines, `process.env`, `require` of built-ins, thrown errors and ConvexError
//! data, the time limit (the worker is replaced), a worker that exits mid-call, a
//! call abandoned mid-execution, calls running in parallel workers, calls that
//! never wait for a busy worker but are refused past the cap, errors nothing
//! caught (the worker is replaced), a missing `node` binary, and bundle files
//! reused across restarts and cleaned up.

use convect_engine::runtime::{Completion, Execution, Host, NodeBundle, NodeConfig, NodePool, SyscallError, SyscallResult, UdfKind};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::Duration;

const ACTIONS: &str = r#"
import { describe } from "./_deps/node/chunk1.js";
const action = (body) => ({
  isAction: true,
  isPublic: true,
  invokeAction: async (requestId, argsJson) => JSON.stringify(await body(JSON.parse(argsJson)[0], requestId)),
});
export const add = action(({ a, b }) => describe(a + b));
export const pid = action(() => process.pid);
export const echo = action(async (args) => JSON.parse(await Convex.asyncSyscall("test/echo", JSON.stringify(args))));
export const refused = action(async () => {
  try {
    await Convex.asyncSyscall("test/refuse", "{}");
  } catch (e) {
    return { message: e.message, data: e.data };
  }
});
export const hang = action(() => Convex.asyncSyscall("test/hang", "{}"));
export const barrier = action(async () => {
  await Convex.asyncSyscall("test/barrier", "{}");
  return process.pid;
});
export const logs = action(() => {
  console.log("hello", 42, { k: [1, "two"] });
  console.warn("careful");
  console.error("bad");
  return null;
});
export const env = action(() => ({ ...process.env }));
export const builtins = action(() => ({
  joined: require("node:path").join("a", "b"),
  hash: require("crypto").createHash("sha256").update("x").digest("hex").length,
}));
export const fails = action(() => { throw new Error("deliberate failure"); });
export const convexError = action(() => {
  const e = new Error("not allowed");
  e.name = "ConvexError";
  e.data = JSON.stringify({ code: 7 });
  throw e;
});
export const spin = action(() => { for (;;) {} });
export const crash = action(() => process.exit(1));
export const throwsLater = action(() => new Promise(() => setTimeout(() => { throw new Error("thrown by a timer"); })));
export const rejectsLater = action(() => { Promise.reject(new Error("nobody handles this")); return new Promise(() => {}); });
export const internalOne = { isAction: true, isInternal: true, invokeAction: async () => "1", exportArgs: () => "{}" };
"#;

const CHUNK: &str = r#"
export const describe = (n) => ({ sum: n, runtime: typeof process.versions.node });
"#;

fn bundle(extra: &[(&str, &str)]) -> Arc<NodeBundle> {
    let mut sources: BTreeMap<String, String> =
        [("actions.js", ACTIONS), ("_deps/node/chunk1.js", CHUNK)].iter().map(|(p, s)| (p.to_string(), s.to_string())).collect();
    let mut key = blake3::Hasher::new();
    for (path, source) in extra {
        sources.insert(path.to_string(), source.to_string());
    }
    for (path, source) in &sources {
        key.update(path.as_bytes());
        key.update(source.as_bytes());
    }
    Arc::new(NodeBundle { key: key.finalize().to_hex().to_string(), sources, dependencies: Vec::new() })
}

fn pool(dir: &tempfile::TempDir, warm_workers: usize) -> NodePool {
    capped_pool(dir, warm_workers, NodeConfig::DEFAULT_MAX_CONCURRENT)
}

fn capped_pool(dir: &tempfile::TempDir, warm_workers: usize, max_concurrent: usize) -> NodePool {
    NodePool::new(NodeConfig { node: None, warm_workers, max_concurrent, scratch_dir: dir.path().join("node") })
}

fn exec(export: &str, args: Json, env: &[(&str, &str)]) -> Execution {
    Execution {
        kind: UdfKind::Action,
        module: "actions.js".into(),
        export: export.into(),
        args_json: json!([args]).to_string(),
        request_id: "req-1".into(),
        seed: 1,
        now_ms: 0.0,
        time_limit: Duration::from_secs(60),
        env: Arc::new(env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
        identity: Default::default(),
    }
}

/// Answers `test/echo`, refuses `test/refuse` with ConvexError data, releases
/// `test/barrier` once as many calls as the barrier's size have reached it, and
/// never answers `test/hang` (but says it was called).
#[derive(Clone)]
struct TestHost {
    barrier: Arc<Barrier>,
    hung: Option<tokio::sync::mpsc::UnboundedSender<()>>,
}

impl TestHost {
    fn new() -> Self {
        TestHost { barrier: Arc::new(Barrier::new(1)), hung: None }
    }
}

impl Host for TestHost {
    fn syscall(&mut self, op: &str, _args: Json) -> SyscallResult {
        Err(SyscallError::new(format!("unexpected sync syscall {op}")))
    }

    fn async_syscall(&mut self, op: &str, args: Json, done: Completion) {
        match op {
            "test/echo" => done.complete(Ok(json!({ "echo": args }))),
            "test/refuse" => done.complete(Err(SyscallError { message: "refused".into(), data: Some(json!({ "why": "test" })) })),
            "test/barrier" => {
                let barrier = self.barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    done.complete(Ok(Json::Null));
                });
            }
            "test/hang" => {
                if let Some(hung) = &self.hung {
                    let _ = hung.send(());
                }
            }
            _ => done.complete(Err(SyscallError::new(format!("unknown syscall {op}")))),
        }
    }
}

async fn run(pool: &NodePool, bundle: &Arc<NodeBundle>, e: Execution) -> (Result<Json, String>, Vec<String>) {
    let outcome = pool.run(bundle, e, TestHost::new()).await.expect("not refused");
    let result = outcome.result.map(|s| serde_json::from_str(&s).expect("result is JSON")).map_err(|f| f.message);
    (result, outcome.log_lines)
}

async fn pid_of(pool: &NodePool, bundle: &Arc<NodeBundle>) -> u64 {
    run(pool, bundle, exec("pid", json!({}), &[])).await.0.expect("pid").as_u64().expect("a number")
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_an_action_in_node_and_keeps_the_worker_warm() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, 1);
    let bundle = bundle(&[]);
    let (result, logs) = run(&pool, &bundle, exec("add", json!({"a": 40, "b": 2}), &[])).await;
    assert_eq!(result.unwrap(), json!({"sum": 42, "runtime": "string"}));
    assert!(logs.is_empty(), "{logs:?}");
    assert!(dir.path().join("node").join(&bundle.key).join("package.json").is_file());
    assert_eq!(pid_of(&pool, &bundle).await, pid_of(&pool, &bundle).await, "one warm worker serves both calls");
    let (result, _) = run(&pool, &bundle, exec("missing", json!({}), &[])).await;
    assert!(result.unwrap_err().contains("is not a action function"));
}

#[tokio::test(flavor = "multi_thread")]
async fn analyzes_entry_modules_like_the_isolate() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, 1);
    let analysis = pool.analyze(&bundle(&[]), vec!["actions.js".into()], Arc::new(BTreeMap::new())).await.expect("analysis");
    let functions = &analysis["actions.js"].functions;
    assert!(functions.iter().all(|f| f.kind == "action"));
    let internal = functions.iter().find(|f| f.name == "internalOne").expect("internalOne is listed");
    assert_eq!((internal.visibility.as_str(), internal.args.as_deref()), ("internal", Some("{}")));
    assert!(functions.iter().any(|f| f.name == "add" && f.visibility == "public"));

    let with_query = bundle(&[("q.js", "export const q = { isQuery: true, invokeQuery: async () => '1' };")]);
    let analysis = pool.analyze(&with_query, vec!["q.js".into()], Arc::new(BTreeMap::new())).await.expect("analysis");
    assert_eq!(analysis["q.js"].functions[0].kind, "query", "reported as is; deploys refuse it");
    let broken = bundle(&[("broken.js", "throw new Error('at load time');")]);
    let err = pool.analyze(&broken, vec!["broken.js".into()], Arc::new(BTreeMap::new())).await.unwrap_err();
    assert!(err.message.starts_with("Failed to analyze broken.js: Uncaught Error: at load time"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn async_syscalls_round_trip_to_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, 1);
    let bundle = bundle(&[]);
    let (result, _) = run(&pool, &bundle, exec("echo", json!({"n": 1}), &[])).await;
    assert_eq!(result.unwrap(), json!({"echo": {"n": 1}}));
    let (result, _) = run(&pool, &bundle, exec("refused", json!({}), &[])).await;
    assert_eq!(result.unwrap(), json!({"message": "refused", "data": {"why": "test"}}));
}

#[tokio::test(flavor = "multi_thread")]
async fn console_lines_env_and_builtins() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, 1);
    let bundle = bundle(&[]);
    let (result, logs) = run(&pool, &bundle, exec("logs", json!({}), &[])).await;
    assert_eq!(result.unwrap(), Json::Null);
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert!(logs[0].starts_with("[LOG] 'hello' 42") && logs[0].contains("two"), "{logs:?}");
    assert_eq!(&logs[1..], ["[WARN] 'careful'", "[ERROR] 'bad'"]);

    let (result, _) = run(&pool, &bundle, exec("env", json!({}), &[("A", "1")])).await;
    assert_eq!(result.unwrap(), json!({"A": "1"}), "exactly the execution's variables");
    let (result, _) = run(&pool, &bundle, exec("env", json!({}), &[("B", "2")])).await;
    assert_eq!(result.unwrap(), json!({"B": "2"}), "nothing left from the previous execution");

    let (result, _) = run(&pool, &bundle, exec("builtins", json!({}), &[])).await;
    assert_eq!(result.unwrap(), json!({"joined": "a/b", "hash": 64}));
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_described_like_the_isolate() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, 1);
    let bundle = bundle(&[]);
    let outcome = pool.run(&bundle, exec("fails", json!({}), &[]), TestHost::new()).await.expect("not refused");
    let failure = outcome.result.unwrap_err();
    assert_eq!(failure.message, "Uncaught Error: deliberate failure");
    // Frames name the module by its path, as QuickJS's do, for the engine to source-map.
    let first = failure.stack.lines().next().unwrap_or_default();
    assert!(first.starts_with("    at ") && first.contains("actions.js:"), "{}", failure.stack);
    assert!(!first.contains("file://"), "{}", failure.stack);
    let outcome = pool.run(&bundle, exec("convexError", json!({}), &[]), TestHost::new()).await.expect("not refused");
    let failure = outcome.result.unwrap_err();
    assert_eq!(failure.message, "Uncaught ConvexError: not allowed");
    assert_eq!(failure.data, Some(json!({"code": 7})));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_kills_and_replaces_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, 1);
    let bundle = bundle(&[]);
    let before = pid_of(&pool, &bundle).await;
    let mut spin = exec("spin", json!({}), &[]);
    spin.time_limit = Duration::from_millis(500);
    let failure = pool.run(&bundle, spin, TestHost::new()).await.expect("not refused").result.unwrap_err();
    assert_eq!(failure.message, "Action `spin` execution timed out (maximum duration 0.5s)");
    let after = pid_of(&pool, &bundle).await;
    assert_ne!(before, after, "a fresh worker runs the next call");
    assert!(!process_exists(before), "the worker that overran was killed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_fails_only_its_own_call() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, 1);
    let bundle = bundle(&[]);
    let failure = pool.run(&bundle, exec("crash", json!({}), &[]), TestHost::new()).await.expect("not refused").result.unwrap_err();
    assert!(failure.message.contains("exited unexpectedly (exit status: 1)"), "{}", failure.message);
    let (result, _) = run(&pool, &bundle, exec("add", json!({"a": 1, "b": 1}), &[])).await;
    assert_eq!(result.unwrap()["sum"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abandoned_call_does_not_return_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Arc::new(pool(&dir, 1));
    let bundle = bundle(&[]);
    let before = pid_of(&pool, &bundle).await;
    let (tx, mut hung) = tokio::sync::mpsc::unbounded_channel();
    let host = TestHost { hung: Some(tx), ..TestHost::new() };
    let call = {
        let (pool, bundle) = (pool.clone(), bundle.clone());
        tokio::spawn(async move { pool.run(&bundle, exec("hang", json!({}), &[]), host).await })
    };
    hung.recv().await.expect("the action reached its syscall");
    // As when a client disconnects: the call's future is dropped mid-execution.
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_ne!(pid_of(&pool, &bundle).await, before, "the busy worker was not handed out again");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_calls_run_in_separate_workers() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Arc::new(pool(&dir, 2));
    let bundle = bundle(&[]);
    // Each call waits in a syscall until both have reached it, so they finish only
    // if two workers run them at the same time.
    let host = TestHost { barrier: Arc::new(Barrier::new(2)), hung: None };
    let calls = (0..2).map(|_| {
        let (pool, bundle, host) = (pool.clone(), bundle.clone(), host.clone());
        tokio::spawn(async move { pool.run(&bundle, exec("barrier", json!({}), &[]), host).await })
    });
    let calls: Vec<_> = calls.collect();
    let mut pids = Vec::new();
    for call in calls {
        pids.push(call.await.unwrap().expect("not refused").result.expect("barrier call"));
    }
    assert_ne!(pids[0], pids[1]);
}

/// Starts `hang` on `pool` and resolves once it is running (holding a worker).
async fn start_hanging(pool: &Arc<NodePool>, bundle: &Arc<NodeBundle>) -> tokio::task::JoinHandle<()> {
    let (tx, mut hung) = tokio::sync::mpsc::unbounded_channel();
    let host = TestHost { hung: Some(tx), ..TestHost::new() };
    let (pool, bundle) = (pool.clone(), bundle.clone());
    let call = tokio::spawn(async move {
        let _ = pool.run(&bundle, exec("hang", json!({}), &[]), host).await;
    });
    hung.recv().await.expect("the action reached its syscall");
    call
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_never_waits_for_a_busy_worker() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Arc::new(pool(&dir, 1));
    let bundle = bundle(&[]);
    // The one warm worker is busy (as with an action waiting in `ctx.runAction`
    // for the next call): that call must get a worker of its own.
    let busy = start_hanging(&pool, &bundle).await;
    let (result, _) = run(&pool, &bundle, exec("add", json!({"a": 2, "b": 3}), &[])).await;
    assert_eq!(result.unwrap()["sum"], 5);
    busy.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_past_the_cap_are_refused_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let pool = Arc::new(capped_pool(&dir, 1, 1));
    let bundle = bundle(&[]);
    let busy = start_hanging(&pool, &bundle).await;
    let refused = pool.run(&bundle, exec("add", json!({"a": 1, "b": 1}), &[]), TestHost::new()).await.unwrap_err();
    assert!(refused.to_string().starts_with("Too many concurrent Node.js actions: 1 are running"), "{refused}");
    // Once the busy call is gone, so is its worker, and calls run again.
    busy.abort();
    assert!(busy.await.unwrap_err().is_cancelled());
    let (result, _) = run(&pool, &bundle, exec("add", json!({"a": 1, "b": 1}), &[])).await;
    assert_eq!(result.unwrap()["sum"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_uncaught_error_fails_its_call_and_replaces_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let pool = pool(&dir, 1);
    let bundle = bundle(&[]);
    let before = pid_of(&pool, &bundle).await;
    let (result, _) = run(&pool, &bundle, exec("throwsLater", json!({}), &[])).await;
    assert_eq!(result.unwrap_err(), "Uncaught uncaughtException: thrown by a timer");
    let after = pid_of(&pool, &bundle).await;
    assert_ne!(before, after, "the worker the error ended is not reused");
    let (result, _) = run(&pool, &bundle, exec("rejectsLater", json!({}), &[])).await;
    assert_eq!(result.unwrap_err(), "Uncaught unhandledRejection: nobody handles this");
    assert_ne!(pid_of(&pool, &bundle).await, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_node_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let pool = NodePool::new(NodeConfig {
        node: Some(PathBuf::from("/nonexistent/bin/node")),
        warm_workers: 1,
        max_concurrent: 1,
        scratch_dir: dir.path().join("node"),
    });
    let failure = pool.run(&bundle(&[]), exec("add", json!({"a": 1, "b": 1}), &[]), TestHost::new()).await.expect("not refused").result.unwrap_err();
    assert!(failure.message.contains("\"use node\" actions need Node.js"), "{}", failure.message);
    assert!(failure.message.contains("--node") && failure.message.contains("CONVECT_NODE"), "{}", failure.message);
    let err = pool.analyze(&bundle(&[]), vec!["actions.js".into()], Arc::new(BTreeMap::new())).await.unwrap_err();
    assert!(err.message.contains("/nonexistent/bin/node"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn bundle_files_are_reused_across_pools_and_old_ones_removed() {
    let dir = tempfile::tempdir().unwrap();
    let first = bundle(&[]);
    let files = dir.path().join("node").join(&first.key);
    run(&pool(&dir, 1), &first, exec("pid", json!({}), &[])).await.0.expect("first pool");
    // A restarted server finds the files in place and does not write them again.
    std::fs::write(files.join("marker"), "").unwrap();
    let restarted = pool(&dir, 1);
    run(&restarted, &first, exec("pid", json!({}), &[])).await.0.expect("second pool");
    assert!(files.join("marker").is_file());
    // Bundles of later deploys push the first one out.
    for n in 0..4 {
        let later = bundle(&[("extra.js", &format!("export const n = {n};"))]);
        run(&restarted, &later, exec("pid", json!({}), &[])).await.0.expect("later bundle");
    }
    assert!(!files.exists(), "the least recently used bundle was removed");
}

fn process_exists(pid: u64) -> bool {
    PathBuf::from(format!("/proc/{pid}")).exists()
}
