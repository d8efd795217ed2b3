//! Function calls: resolving a path to a function of the live deployment, checking
//! visibility and argument/return validators, running it in an isolate, and for
//! mutations committing its writes, re-running it on conflict.

pub(crate) mod action_host;
mod nested;
mod pool;
mod stack;
mod storage_syscalls;
mod syscalls;
mod system;

pub use pool::{IsolatePool, WhenBusy};
pub use stack::SourceMaps;
pub use syscalls::Journal;
pub use system::SystemError;

use crate::committer::CommitError;
use crate::deployment::{Deployment, FunctionMeta, Visibility};
use crate::engine::Engine;
use crate::runtime::{CallerIdentity, Execution, JsFailure, UdfKind};
use crate::scheduler::jobs::{self, Job};
use crate::storage::Persistence;
use crate::txn::{ReadSet, Transaction};
use crate::types::Timestamp;
use action_host::ActionHost;
use convect_bundler::Environment;
use convect_schema::{check_value, DocumentId, Value};
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use syscalls::TxnHost;

const QUERY_TIME_LIMIT: Duration = Duration::from_secs(1);
/// A mutation that keeps conflicting is re-run at most this many times.
const MAX_MUTATION_ATTEMPTS: u32 = 64;

/// Who is calling: clients reach only public functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Client,
    Admin,
    Action,
    /// A scheduled job: internal functions too, and no user identity.
    Scheduler,
}

/// A failed call: the function's own failure, or one of the call (an unknown
/// function, invalid arguments), which Convex reports the same way.
#[derive(Debug, Clone)]
pub struct CallError {
    /// `Uncaught Error: ...` and source-mapped frames for a thrown error. An
    /// action that calls a failing function sees exactly this as its error.
    pub message: String,
    /// `ConvexError` data, as convex-encoded JSON.
    pub data: Option<Json>,
    /// Set when the system failed the call, not the function; see `system.rs`.
    /// Boxed: it is rare, and every `Result<_, CallError>` carries its size.
    pub system: Option<Box<SystemError>>,
}

impl CallError {
    fn new(message: impl Into<String>) -> Self {
        CallError { message: message.into(), data: None, system: None }
    }

    /// A calling action sees the code with the message.
    fn system(e: SystemError) -> Self {
        CallError { message: format!("{}: {e}", e.code()), data: None, system: Some(Box::new(e)) }
    }

    /// A runtime's failure, its frames mapped through `deployment`'s source maps.
    pub(crate) fn from_js(failure: JsFailure, deployment: &Deployment, store: &dyn Persistence) -> Self {
        let frames = deployment.source_maps.map_frames(&failure.stack, store);
        // Every frame line ends with a newline, as in Convex's messages: clients
        // that append `\n  Called by client` then leave a blank line before it.
        let message = match frames.as_str() {
            "" => failure.message,
            frames => format!("{}\n{frames}\n", failure.message),
        };
        // Re-exported from the value model, as Convex exports ConvexError data
        // (sorted keys, `1.0`). The JS side encoded it, so it decodes; were it
        // not a value, the data as sent is still better than none.
        let data = failure.data.map(|d| Value::from_json(&d).map(|v| v.to_json()).unwrap_or(d));
        CallError { message, data, system: None }
    }
}

/// A failed call's `message` as a client gets it, in Convex's words:
/// `[Request ID: <16 hex>] Server Error\n<message>`. Added only where a call
/// leaves the server, so nested calls do not nest prefixes; the id is logged
/// with `path` and the message, so that an operator can find what a user reports.
pub fn client_message(path: &str, message: &str) -> String {
    format!("{} Server Error\n{message}", logged_request_id(path, message))
}

/// A fresh `[Request ID: <16 hex>]` for a failed call leaving the server,
/// logged with `path` and `message`.
pub(crate) fn logged_request_id(path: &str, message: &str) -> String {
    let request_id = format!("{:016x}", rand::random::<u64>());
    tracing::info!(request_id, path, error = message, "function call failed");
    format!("[Request ID: {request_id}]")
}

/// A live query's execution: its result, what it read, and its journal.
#[derive(Debug)]
pub struct LiveRun {
    pub result: CallResult,
    pub reads: ReadSet,
    pub journal: Option<String>,
}

#[derive(Debug)]
pub struct CallResult {
    /// The convex-encoded JSON return value.
    pub value: Result<Json, CallError>,
    pub log_lines: Vec<String>,
    /// For mutations: the commit timestamp of its writes.
    pub ts: Option<Timestamp>,
}

impl CallResult {
    fn failed(e: CallError) -> Self {
        CallResult { value: Err(e), log_lines: Vec::new(), ts: None }
    }
}

/// The wall clock in Unix milliseconds, as functions and system tables record time.
pub(crate) fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// Convex's message, word for word because clients and tests match it
/// (`npx convex dev` deploys to Convect too, once the official CLI is served).
fn not_found(path: &str) -> CallError {
    CallError::new(format!("Could not find public function for '{path}'. Did you forget to run `npx convex dev`?"))
}

/// Decodes and validates the single argument object.
fn decode_args(f: &FunctionMeta, path: &str, args: &Json, catalog: &crate::catalog::Catalog) -> Result<String, CallError> {
    let args = if args.is_null() { Json::Object(Default::default()) } else { args.clone() };
    let value = Value::from_json(&args).map_err(|e| CallError::new(format!("Invalid arguments for {path}: {e}")))?;
    if !matches!(value, Value::Object(_)) {
        return Err(CallError::new(format!("Invalid arguments for {path}: expected an object, got {}", value.type_name())));
    }
    check_value(&value).map_err(|e| CallError::new(format!("Invalid arguments for {path}: {e}")))?;
    if let Some(validator) = &f.args {
        validator
            .check(&value, catalog)
            .map_err(|e| CallError::new(format!("ArgumentValidationError: {e}\nin {path}")))?;
    }
    Ok(Json::Array(vec![value.to_json()]).to_string())
}

fn check_returns(f: &FunctionMeta, path: &str, json: &str, catalog: &crate::catalog::Catalog) -> Result<Json, CallError> {
    let encoded: Json = serde_json::from_str(json).map_err(|e| CallError::new(format!("invalid return value: {e}")))?;
    let value = Value::from_json(&encoded).map_err(|e| CallError::new(format!("invalid return value of {path}: {e}")))?;
    check_value(&value).map_err(|e| CallError::new(format!("Return value of {path} is invalid: {e}")))?;
    if let Some(validator) = &f.returns {
        validator
            .check(&value, catalog)
            .map_err(|e| CallError::new(format!("ReturnsValidationError: {e}\nin {path}")))?;
    }
    // Exported from the value model, as Convex exports results: object keys
    // sorted, whole-number floats written `1.0`.
    Ok(value.to_json())
}

impl Engine {
    /// Resolves a call: the function, its checked arguments, and the execution.
    fn prepare(
        &self,
        path: &str,
        expected: Option<UdfKind>,
        args: Json,
        caller: Caller,
    ) -> Result<(Arc<Deployment>, FunctionMeta, Execution), CallError> {
        let deployment = self.deployment();
        let Some(f) = deployment.function(path).cloned() else { return Err(not_found(path)) };
        if f.visibility == Visibility::Internal && caller == Caller::Client {
            return Err(not_found(path));
        }
        if let Some(kind) = expected.filter(|k| *k != f.kind) {
            // Convex names the function by its canonical path here (`dir/file.js:name`).
            return Err(CallError::new(format!(
                "Trying to execute {}:{} as {}, but it is defined as {}.",
                f.module,
                f.export,
                kind.display_name(),
                f.kind.display_name()
            )));
        }
        let args_json = {
            let catalog = self.inner.catalog.read().expect("catalog poisoned");
            decode_args(&f, path, &args, &catalog)?
        };
        let exec = Execution {
            kind: f.kind,
            module: f.module.clone(),
            export: f.export.clone(),
            args_json,
            request_id: String::new(),
            seed: rand::random(),
            now_ms: now_ms(),
            time_limit: if f.kind == UdfKind::Action { self.inner.action_timeout } else { QUERY_TIME_LIMIT },
            env: deployment.env.clone(),
            identity: CallerIdentity::Anonymous,
        };
        Ok((deployment, f, exec))
    }

    /// Calls a function by path with convex-encoded JSON arguments.
    pub async fn call(&self, path: &str, expected: Option<UdfKind>, args: Json, caller: Caller, identity: CallerIdentity) -> CallResult {
        let (deployment, f, mut exec) = match self.prepare(path, expected, args, caller) {
            Ok(x) => x,
            Err(e) => return CallResult::failed(e),
        };
        exec.identity = identity;
        match f.kind {
            UdfKind::Query => self.run_query(deployment, f, path, exec, None, Journal::default()).await.result,
            UdfKind::Mutation => self.run_mutation(deployment, f, path, exec, None).await,
            UdfKind::Action => self.run_action(deployment, f, path, exec).await,
        }
    }

    /// Runs a scheduled job. A mutation runs only while its job is pending, and
    /// moves it to `success` in its own transaction; an action's job the
    /// scheduler moves itself.
    pub(crate) async fn call_job(&self, job: &Job) -> CallResult {
        let (deployment, f, exec) = match self.prepare(&job.name, None, job.args.clone(), Caller::Scheduler) {
            Ok(x) => x,
            Err(e) => return CallResult::failed(e),
        };
        match f.kind {
            UdfKind::Mutation => self.run_mutation(deployment, f, &job.name, exec, Some(job.id)).await,
            UdfKind::Action => self.run_action(deployment, f, &job.name, exec).await,
            UdfKind::Query => CallResult::failed(CallError::new(format!("{} is a query; queries cannot be scheduled", job.name))),
        }
    }

    /// Runs a live query at `snapshot`, replaying `journal`, and returns what it
    /// read. A call that fails before running reads nothing; it is re-run on a deploy.
    pub async fn query_at(
        &self,
        path: &str,
        args: Json,
        (caller, identity): (Caller, CallerIdentity),
        snapshot: Timestamp,
        journal: Journal,
    ) -> LiveRun {
        match self.prepare(path, Some(UdfKind::Query), args, caller) {
            Ok((deployment, f, exec)) => {
                let exec = Execution { identity, ..exec };
                self.run_query(deployment, f, path, exec, Some(snapshot), journal).await
            }
            Err(e) => LiveRun { result: CallResult::failed(e), reads: ReadSet::default(), journal: None },
        }
    }

    /// The checked, encoded return value of an execution.
    fn returned(&self, deployment: &Deployment, f: &FunctionMeta, path: &str, result: Result<String, JsFailure>) -> Result<Json, CallError> {
        let json = result.map_err(|failure| self.js_error(deployment, failure))?;
        let catalog = self.inner.catalog.read().expect("catalog poisoned");
        check_returns(f, path, &json, &catalog)
    }

    fn js_error(&self, deployment: &Deployment, failure: JsFailure) -> CallError {
        CallError::from_js(failure, deployment, self.store().as_ref())
    }

    /// Runs a query or one attempt of a mutation; returns the outcome and its transaction.
    async fn run_in_txn(
        &self,
        deployment: &Arc<Deployment>,
        exec: Execution,
        writable: bool,
        snapshot: Option<Timestamp>,
        journal: Journal,
        job: Option<DocumentId>,
    ) -> Result<(crate::runtime::ExecOutcome, TxnHost), CallError> {
        let env = self.txn_env(deployment);
        let mut txn = match snapshot {
            Some(ts) => Transaction::begin_at(env, ts, exec.now_ms),
            None => Transaction::begin(env, exec.now_ms),
        };
        if let Some(id) = job {
            // Read in the transaction: a cancel committed meanwhile is a conflict.
            let doc = jobs::get(&mut txn, id).map_err(|e| CallError::new(e.to_string()))?;
            if doc.as_ref().and_then(jobs::kind) != Some(jobs::PENDING) {
                return Err(CallError::new("the scheduled function is no longer pending"));
            }
        }
        let mut host = TxnHost::new(txn, writable, journal, deployment.clone(), self.clone());
        host.identity = exec.identity.clone();
        let run = self.inner.udf_pool.run(deployment.clone(), move |iso| iso.run(&exec, host)).await;
        let (outcome, mut host) = run.map_err(|failure| self.js_error(deployment, failure))?;
        // A system error fails the call whatever the function made of it.
        match host.system_error.take() {
            Some(e) => Err(CallError::system(e)),
            None => Ok((outcome, host)),
        }
    }

    async fn run_query(
        &self,
        deployment: Arc<Deployment>,
        f: FunctionMeta,
        path: &str,
        exec: Execution,
        snapshot: Option<Timestamp>,
        journal: Journal,
    ) -> LiveRun {
        let (outcome, host) = match self.run_in_txn(&deployment, exec, false, snapshot, journal, None).await {
            Ok(x) => x,
            Err(e) => return LiveRun { result: CallResult::failed(e), reads: ReadSet::default(), journal: None },
        };
        let ts = Some(host.txn.snapshot());
        let value = self.returned(&deployment, &f, path, outcome.result);
        LiveRun { result: CallResult { value, log_lines: outcome.log_lines, ts }, journal: host.journal.encode(), reads: host.txn.reads }
    }

    async fn run_mutation(&self, deployment: Arc<Deployment>, f: FunctionMeta, path: &str, exec: Execution, job: Option<DocumentId>) -> CallResult {
        let mut deployment = deployment;
        let mut lane = None;
        let mut conflicting_table = None;
        for attempt in 0..MAX_MUTATION_ATTEMPTS {
            let mut exec = exec.clone();
            exec.seed = rand::random();
            exec.now_ms = now_ms();
            // A retry after an environment change must see the new values.
            exec.env = deployment.env.clone();
            let (outcome, host) = match self.run_in_txn(&deployment, exec, true, None, Journal::default(), job).await {
                Ok(x) => x,
                Err(e) => return CallResult::failed(e),
            };
            let mut txn = host.txn;
            let log_lines = outcome.log_lines;
            let value = match self.returned(&deployment, &f, path, outcome.result) {
                Ok(v) => v,
                Err(e) => return CallResult { value: Err(e), log_lines, ts: None },
            };
            if let Some(id) = job {
                // With its writes, or not at all. A job that canceled itself stays canceled.
                if let Err(e) = jobs::transition(&mut txn, id, &[jobs::PENDING], jobs::State::Success, now_ms()) {
                    return CallResult { value: Err(CallError::new(e.to_string())), log_lines, ts: None };
                }
            }
            match self.inner.committer.commit(txn.prepare()).await {
                Ok(ts) => return CallResult { value: Ok(value), log_lines, ts: Some(ts) },
                Err(CommitError::Conflict { retry_after, table }) => {
                    tracing::debug!(path, attempt, "mutation conflicted; re-running");
                    conflicting_table = table;
                    if lane.is_none() {
                        lane = Some(self.inner.retry_lane.lock().await);
                    }
                    self.inner.committer.wait_for(retry_after).await;
                    deployment = self.deployment();
                }
                Err(e) => return CallResult { value: Err(CallError::new(e.to_string())), log_lines, ts: None },
            }
        }
        tracing::info!(path, attempts = MAX_MUTATION_ATTEMPTS, "mutation kept conflicting; giving up");
        CallResult::failed(CallError::system(SystemError::Occ { table: conflicting_table }))
    }

    async fn run_action(&self, deployment: Arc<Deployment>, f: FunctionMeta, path: &str, exec: Execution) -> CallResult {
        let host = ActionHost { identity: exec.identity.clone(), ..ActionHost::new(self.clone()) };
        let outcome = if f.environment == Environment::Node {
            match self.inner.node_pool.run(&deployment.node, exec, host).await {
                Ok(o) => o,
                Err(busy) => {
                    let overloaded = SystemError::Overloaded { code: system::TOO_MANY_REQUESTS, message: busy.to_string() };
                    return CallResult::failed(CallError::system(overloaded));
                }
            }
        } else {
            match self.inner.action_pool.run(deployment.clone(), move |iso| iso.run(&exec, host).0).await {
                Ok(o) => o,
                Err(failure) => return CallResult::failed(self.js_error(&deployment, failure)),
            }
        };
        let value = self.returned(&deployment, &f, path, outcome.result);
        CallResult { value, log_lines: outcome.log_lines, ts: None }
    }
}
