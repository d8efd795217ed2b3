//! Function calls: resolving a path to a function of the live deployment, checking
//! visibility and argument/return validators, running it in an isolate, and for
//! mutations committing its writes, re-running it on conflict.

mod action_host;
mod pool;
mod syscalls;

pub use pool::IsolatePool;
pub use syscalls::Journal;

use crate::committer::CommitError;
use crate::deployment::{FunctionMeta, Visibility};
use crate::engine::Engine;
use crate::runtime::{Execution, JsFailure, UdfKind};
use crate::txn::{ReadSet, Transaction};
use crate::types::Timestamp;
use action_host::ActionHost;
use convect_bundler::Environment;
use convect_schema::{check_value, Value};
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use syscalls::TxnHost;

const QUERY_TIME_LIMIT: Duration = Duration::from_secs(1);
const ACTION_TIME_LIMIT: Duration = Duration::from_secs(600);
/// A mutation that keeps conflicting is re-run at most this many times.
const MAX_MUTATION_ATTEMPTS: u32 = 64;

/// Who is calling: clients reach only public functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Client,
    Admin,
    Action,
}

/// A failed call, as clients see it.
#[derive(Debug, Clone)]
pub struct CallError {
    pub message: String,
    pub data: Option<Json>,
    /// A developer error in the request (unknown function, bad args) vs. the
    /// function's own failure.
    pub is_request_error: bool,
}

impl CallError {
    fn request(message: impl Into<String>) -> Self {
        CallError { message: message.into(), data: None, is_request_error: true }
    }
    fn function(message: impl Into<String>) -> Self {
        CallError { message: message.into(), data: None, is_request_error: false }
    }
}

impl From<JsFailure> for CallError {
    fn from(f: JsFailure) -> Self {
        CallError { message: f.message, data: f.data, is_request_error: false }
    }
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

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

fn not_found(path: &str) -> CallError {
    CallError::request(format!(
        "Could not find public function for '{path}'. Did you forget to run `convect deploy` (or `convect dev`)?"
    ))
}

/// Decodes and validates the single argument object.
fn decode_args(f: &FunctionMeta, path: &str, args: &Json, catalog: &crate::catalog::Catalog) -> Result<String, CallError> {
    let args = if args.is_null() { Json::Object(Default::default()) } else { args.clone() };
    let value = Value::from_json(&args).map_err(|e| CallError::request(format!("Invalid arguments for {path}: {e}")))?;
    if !matches!(value, Value::Object(_)) {
        return Err(CallError::request(format!("Invalid arguments for {path}: expected an object, got {}", value.type_name())));
    }
    check_value(&value).map_err(|e| CallError::request(format!("Invalid arguments for {path}: {e}")))?;
    if let Some(validator) = &f.args {
        validator
            .check(&value, catalog)
            .map_err(|e| CallError::request(format!("ArgumentValidationError: {e}\nin {path}")))?;
    }
    Ok(Json::Array(vec![value.to_json()]).to_string())
}

fn check_returns(f: &FunctionMeta, path: &str, json: &str, catalog: &crate::catalog::Catalog) -> Result<Json, CallError> {
    let encoded: Json = serde_json::from_str(json).map_err(|e| CallError::function(format!("invalid return value: {e}")))?;
    let value = Value::from_json(&encoded).map_err(|e| CallError::function(format!("invalid return value of {path}: {e}")))?;
    check_value(&value).map_err(|e| CallError::function(format!("Return value of {path} is invalid: {e}")))?;
    if let Some(validator) = &f.returns {
        validator
            .check(&value, catalog)
            .map_err(|e| CallError::function(format!("ReturnsValidationError: {e}\nin {path}")))?;
    }
    Ok(encoded)
}

impl Engine {
    /// Resolves a call: the function, its checked arguments, and the execution.
    fn prepare(
        &self,
        path: &str,
        expected: Option<UdfKind>,
        args: Json,
        caller: Caller,
    ) -> Result<(Arc<crate::deployment::Deployment>, FunctionMeta, Execution), CallError> {
        let deployment = self.deployment();
        let Some(f) = deployment.function(path).cloned() else { return Err(not_found(path)) };
        if f.visibility == Visibility::Internal && caller == Caller::Client {
            return Err(not_found(path));
        }
        if let Some(kind) = expected.filter(|k| *k != f.kind) {
            return Err(CallError::request(format!(
                "Trying to execute {path} as {}, but it is defined as {}.",
                kind.as_str(),
                f.kind.as_str()
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
            time_limit: if f.kind == UdfKind::Action { ACTION_TIME_LIMIT } else { QUERY_TIME_LIMIT },
            env: deployment.env.clone(),
        };
        Ok((deployment, f, exec))
    }

    /// Calls a function by path with convex-encoded JSON arguments.
    pub async fn call(&self, path: &str, expected: Option<UdfKind>, args: Json, caller: Caller) -> CallResult {
        let (deployment, f, exec) = match self.prepare(path, expected, args, caller) {
            Ok(x) => x,
            Err(e) => return CallResult::failed(e),
        };
        match f.kind {
            UdfKind::Query => self.run_query(deployment, f, path, exec, None, Journal::default()).await.result,
            UdfKind::Mutation => self.run_mutation(deployment, f, path, exec).await,
            UdfKind::Action => self.run_action(deployment, f, path, exec).await,
        }
    }

    /// Runs a live query at `snapshot`, replaying `journal`, and returns what it
    /// read. A call that fails before running reads nothing; it is re-run on a deploy.
    pub async fn query_at(&self, path: &str, args: Json, caller: Caller, snapshot: Timestamp, journal: Journal) -> LiveRun {
        match self.prepare(path, Some(UdfKind::Query), args, caller) {
            Ok((deployment, f, exec)) => self.run_query(deployment, f, path, exec, Some(snapshot), journal).await,
            Err(e) => LiveRun { result: CallResult::failed(e), reads: ReadSet::default(), journal: None },
        }
    }

    /// The checked, encoded return value of an execution.
    fn returned(&self, f: &FunctionMeta, path: &str, result: Result<String, JsFailure>) -> Result<Json, CallError> {
        let json = result?;
        let catalog = self.inner.catalog.read().expect("catalog poisoned");
        check_returns(f, path, &json, &catalog)
    }

    /// Runs a query or one attempt of a mutation; returns the outcome and its transaction.
    async fn run_in_txn(
        &self,
        deployment: &Arc<crate::deployment::Deployment>,
        exec: Execution,
        writable: bool,
        snapshot: Option<Timestamp>,
        journal: Journal,
    ) -> Result<(crate::runtime::ExecOutcome, TxnHost), CallError> {
        let env = self.txn_env(deployment);
        let txn = match snapshot {
            Some(ts) => Transaction::begin_at(env, ts, exec.now_ms),
            None => Transaction::begin(env, exec.now_ms),
        };
        let host = TxnHost::new(txn, writable, journal);
        Ok(self.inner.udf_pool.run(deployment.clone(), move |iso| iso.run(&exec, host)).await?)
    }

    async fn run_query(
        &self,
        deployment: Arc<crate::deployment::Deployment>,
        f: FunctionMeta,
        path: &str,
        exec: Execution,
        snapshot: Option<Timestamp>,
        journal: Journal,
    ) -> LiveRun {
        let (outcome, host) = match self.run_in_txn(&deployment, exec, false, snapshot, journal).await {
            Ok(x) => x,
            Err(e) => return LiveRun { result: CallResult::failed(e), reads: ReadSet::default(), journal: None },
        };
        let ts = Some(host.txn.snapshot());
        let value = self.returned(&f, path, outcome.result);
        LiveRun { result: CallResult { value, log_lines: outcome.log_lines, ts }, journal: host.journal.encode(), reads: host.txn.reads }
    }

    async fn run_mutation(&self, deployment: Arc<crate::deployment::Deployment>, f: FunctionMeta, path: &str, exec: Execution) -> CallResult {
        let mut deployment = deployment;
        let mut lane = None;
        for attempt in 0..MAX_MUTATION_ATTEMPTS {
            let mut exec = exec.clone();
            exec.seed = rand::random();
            exec.now_ms = now_ms();
            // A retry after an environment change must see the new values.
            exec.env = deployment.env.clone();
            let (outcome, host) = match self.run_in_txn(&deployment, exec, true, None, Journal::default()).await {
                Ok(x) => x,
                Err(e) => return CallResult::failed(e),
            };
            let txn = host.txn;
            let log_lines = outcome.log_lines;
            let value = match self.returned(&f, path, outcome.result) {
                Ok(v) => v,
                Err(e) => return CallResult { value: Err(e), log_lines, ts: None },
            };
            match self.inner.committer.commit(txn.prepare()).await {
                Ok(ts) => return CallResult { value: Ok(value), log_lines, ts: Some(ts) },
                Err(CommitError::Conflict { retry_after }) => {
                    tracing::debug!(path, attempt, "mutation conflicted; re-running");
                    if lane.is_none() {
                        lane = Some(self.inner.retry_lane.lock().await);
                    }
                    self.inner.committer.wait_for(retry_after).await;
                    deployment = self.deployment();
                }
                Err(e) => return CallResult { value: Err(CallError::function(e.to_string())), log_lines, ts: None },
            }
        }
        CallResult::failed(CallError::function(format!(
            "{path} failed after {MAX_MUTATION_ATTEMPTS} attempts because of conflicting concurrent writes; try again."
        )))
    }

    async fn run_action(&self, deployment: Arc<crate::deployment::Deployment>, f: FunctionMeta, path: &str, exec: Execution) -> CallResult {
        let host = ActionHost { engine: self.clone(), runtime: tokio::runtime::Handle::current() };
        let outcome = if f.environment == Environment::Node {
            self.inner.node_pool.run(&deployment.node, exec, host).await
        } else {
            match self.inner.action_pool.run(deployment, move |iso| iso.run(&exec, host).0).await {
                Ok(o) => o,
                Err(e) => return CallResult::failed(e.into()),
            }
        };
        let value = self.returned(&f, path, outcome.result);
        CallResult { value, log_lines: outcome.log_lines, ts: None }
    }
}
