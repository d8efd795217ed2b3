//! The QuickJS runtime boundary on its own: an `Isolate` over a hand-written module
//! map runs executions against a trivial `Host`. Covers results and arguments,
//! syscalls, the time limit on a runaway loop (and the isolate reporting itself
//! unhealthy afterwards), deterministic `Math.random` per seed, a fixed
//! `Date.now()` per execution, captured console lines, and thrown errors.

use convect_engine::runtime::{Completion, Execution, Host, Isolate, SyscallError, SyscallResult, UdfKind};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Answers `test/echo` synchronously and asynchronously and records every call.
#[derive(Default)]
struct EchoHost {
    calls: Vec<String>,
}

impl Host for EchoHost {
    fn syscall(&mut self, op: &str, args: Json) -> SyscallResult {
        self.calls.push(op.to_owned());
        match op {
            "test/echo" => Ok(json!({ "echo": args })),
            _ => Err(SyscallError::new(format!("unknown syscall {op}"))),
        }
    }

    fn async_syscall(&mut self, op: &str, args: Json, done: Completion) {
        self.calls.push(format!("async {op}"));
        let result = self.syscall(op, args);
        // Complete from another thread, later, as a real host would.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(5));
            done.complete(result);
        });
    }
}

const MODULE: &str = r#"
export const f = { isQuery: true, invokeQuery: async (a) => JSON.stringify(JSON.parse(a)[0].x + 1) };
export const spin = { isQuery: true, invokeQuery: async () => { while (true) {} } };
export const rand = {
  isQuery: true,
  invokeQuery: async () => JSON.stringify([Math.random(), Math.random(), Math.random()]),
};
export const randAction = {
  isAction: true,
  invokeAction: async () => JSON.stringify([Math.random(), Math.random(), Math.random()]),
};
export const clock = {
  isMutation: true,
  invokeMutation: async () => {
    const first = Date.now();
    let x = 0;
    const start = new Date().getTime();
    for (let i = 0; i < 300000; i++) x += i; // lets the real clock move on
    return JSON.stringify([first, Date.now(), new Date().getTime(), start, x > 0]);
  },
};
export const logs = {
  isQuery: true,
  invokeQuery: async (a) => {
    console.log("hello", 42, { k: [1, "two"] });
    console.warn("careful");
    console.error(new Error("boom").message);
    return JSON.stringify(JSON.parse(a)[0].tag);
  },
};
export const calls = {
  isQuery: true,
  invokeQuery: async () => {
    const sync = JSON.parse(Convex.syscall("test/echo", JSON.stringify({ n: 1 })));
    const asyncResult = JSON.parse(await Convex.asyncSyscall("test/echo", JSON.stringify({ n: 2 })));
    let failed = null;
    try { Convex.syscall("test/nope", "{}"); } catch (e) { failed = e.message; }
    return JSON.stringify([sync, asyncResult, failed]);
  },
};
export const throws = { isQuery: true, invokeQuery: async () => { throw new Error("deliberate failure"); } };
"#;

fn isolate() -> Isolate {
    let sources: HashMap<String, String> = [("m.js".to_string(), MODULE.to_string())].into();
    Isolate::new(Arc::new(sources), &Default::default()).expect("isolate")
}

fn exec(kind: UdfKind, export: &str, args: Json) -> Execution {
    Execution {
        kind,
        module: "m.js".into(),
        export: export.into(),
        args_json: args.to_string(),
        request_id: "req-1".into(),
        seed: 12345,
        now_ms: 1_700_000_000_123.0,
        time_limit: Duration::from_secs(5),
        env: Arc::new(BTreeMap::new()),
        identity: Default::default(),
    }
}

fn run(iso: &mut Isolate, e: &Execution) -> (Result<String, String>, Vec<String>) {
    let (outcome, _host) = iso.run(e, EchoHost::default());
    (outcome.result.map_err(|f| f.message), outcome.log_lines)
}

fn parse(r: Result<String, String>) -> Json {
    serde_json::from_str(&r.expect("execution succeeds")).expect("result is JSON")
}

#[test]
fn runs_a_query_with_arguments() {
    let mut iso = isolate();
    let (result, logs) = run(&mut iso, &exec(UdfKind::Query, "f", json!([{"x": 41}])));
    assert_eq!(result.unwrap(), "42");
    assert!(logs.is_empty());
    // Warm: the same isolate runs again with other arguments.
    let (result, _) = run(&mut iso, &exec(UdfKind::Query, "f", json!([{"x": -1}])));
    assert_eq!(result.unwrap(), "0");
    // The wrong kind, a missing export, and a throw are reported, not panics.
    let (result, _) = run(&mut iso, &exec(UdfKind::Mutation, "f", json!([{}])));
    assert!(result.unwrap_err().contains("is not a mutation function"));
    let (result, _) = run(&mut iso, &exec(UdfKind::Query, "missing", json!([{}])));
    assert!(result.is_err());
    let (result, _) = run(&mut iso, &exec(UdfKind::Query, "throws", json!([{}])));
    assert!(result.unwrap_err().contains("deliberate failure"));
    assert!(iso.is_healthy());
}

#[test]
fn syscalls_reach_the_host() {
    let mut iso = isolate();
    let (outcome, host) = iso.run(&exec(UdfKind::Query, "calls", json!([{}])), EchoHost::default());
    let v = parse(outcome.result.map_err(|f| f.message));
    assert_eq!(v[0], json!({"echo": {"n": 1}}));
    assert_eq!(v[1], json!({"echo": {"n": 2}}));
    assert!(v[2].as_str().unwrap().contains("unknown syscall test/nope"), "{v}");
    assert_eq!(host.calls, vec!["test/echo", "async test/echo", "test/echo", "test/nope"]);
}

#[test]
fn runaway_loop_hits_the_time_limit() {
    let mut iso = isolate();
    let mut e = exec(UdfKind::Query, "spin", json!([{}]));
    e.time_limit = Duration::from_millis(300);
    let started = Instant::now();
    let (result, _) = run(&mut iso, &e);
    let elapsed = started.elapsed();
    let message = result.expect_err("an infinite loop cannot succeed");
    // Convex's words for a V8 isolate's timeout; the limit as Rust's Duration Debug.
    assert_eq!(message, "Function execution timed out (maximum duration: 300ms)");
    assert!(elapsed >= Duration::from_millis(300), "stopped early: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "stopped late: {elapsed:?}");
    assert!(!iso.is_healthy(), "an interrupted isolate reports itself unhealthy");
    // A fresh isolate is healthy and works.
    let mut fresh = isolate();
    assert!(fresh.is_healthy());
    assert_eq!(run(&mut fresh, &exec(UdfKind::Query, "f", json!([{"x": 1}]))).0.unwrap(), "2");
}

#[test]
fn math_random_is_seeded_in_queries() {
    let mut iso = isolate();
    let e = exec(UdfKind::Query, "rand", json!([{}]));
    let first = parse(run(&mut iso, &e).0);
    let again = parse(run(&mut iso, &e).0);
    let in_another_isolate = parse(run(&mut isolate(), &e).0);
    assert_eq!(first, again, "same seed, same sequence");
    assert_eq!(first, in_another_isolate, "independent of the isolate's history");
    let numbers: Vec<f64> = first.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(numbers.iter().all(|x| (0.0..1.0).contains(x)), "{numbers:?}");
    assert!(numbers[0] != numbers[1] && numbers[1] != numbers[2], "{numbers:?}");
    let mut other_seed = e.clone();
    other_seed.seed = 999;
    assert_ne!(parse(run(&mut iso, &other_seed).0), first, "another seed, another sequence");
    // Actions are not deterministic: they get the real generator.
    let a = exec(UdfKind::Action, "randAction", json!([{}]));
    assert_ne!(parse(run(&mut iso, &a).0), parse(run(&mut iso, &a).0));
}

#[test]
fn date_now_is_fixed_per_execution() {
    let mut iso = isolate();
    let e = exec(UdfKind::Mutation, "clock", json!([{}]));
    let v = parse(run(&mut iso, &e).0);
    let fixed = json!(1_700_000_000_123.0_f64);
    for i in 0..4 {
        assert_eq!(v[i].as_f64(), fixed.as_f64(), "value {i} of {v}");
    }
    let mut later = e.clone();
    later.now_ms = 1_800_000_000_000.0;
    let v = parse(run(&mut iso, &later).0);
    assert_eq!(v[0].as_f64(), Some(1_800_000_000_000.0));
    assert_eq!(v[1].as_f64(), Some(1_800_000_000_000.0));
}

#[test]
fn console_lines_are_captured_per_execution() {
    let mut iso = isolate();
    let (result, logs) = run(&mut iso, &exec(UdfKind::Query, "logs", json!([{"tag": "one"}])));
    assert_eq!(result.unwrap(), "\"one\"");
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert!(logs[0].contains("hello") && logs[0].contains("42") && logs[0].contains("two"), "{logs:?}");
    assert!(logs[0].starts_with("[LOG]"), "{logs:?}");
    assert!(logs[1].starts_with("[WARN]") && logs[1].contains("careful"), "{logs:?}");
    assert!(logs[2].starts_with("[ERROR]") && logs[2].contains("boom"), "{logs:?}");
    // The next execution starts with an empty log.
    let (_, logs) = run(&mut iso, &exec(UdfKind::Query, "f", json!([{"x": 1}])));
    assert!(logs.is_empty(), "{logs:?}");
}
