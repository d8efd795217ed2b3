//! The Node.js runtime for `"use node"` actions: the only code that starts or talks
//! to `node`. It owns a pool of worker processes (`worker.rs`), the bundle files they
//! import (`scratch.rs`) and the worker script (`worker.js`, evaluated after the entry
//! points shared with QuickJS in `../shared.js`). A worker runs one execution at a
//! time against a `Host`, exactly as an `Isolate` does, and answers over a socket on
//! its fd 3, because user code owns stdout and stderr (forwarded to tracing).
//!
//! A call never waits for a busy worker: it takes an idle one or starts another,
//! as Convex runs every action in a process of its own. Waiting could never end
//! when every busy worker runs an action waiting (through `ctx.runAction`) for
//! one more. Only a hard cap on live workers bounds them, past which a call is
//! refused at once.

mod packages;
mod scratch;
mod worker;

use super::{parse_outcome, ExecOutcome, Execution, Host, JsFailure, ModuleAnalysis, NodeBundle, UdfKind};
use scratch::Scratch;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use worker::{NoSyscalls, Request, Worker};

/// Loading a deployment's modules for analysis must not hang a deploy.
const ANALYZE_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Why the Node.js runtime could not run something (as opposed to user code failing).
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error(
        "\"use node\" actions need Node.js, but {0}. Install Node.js (18 or later), or pass \
         `--node PATH` to `convect serve` or set CONVECT_NODE."
    )]
    Missing(String),
    #[error("starting the Node.js worker {node}: {source}")]
    Spawn { node: String, source: std::io::Error },
    #[error("writing Node.js files to {path}: {source}")]
    Scratch { path: String, source: std::io::Error },
    #[error(transparent)]
    Packages(#[from] packages::PackageError),
    #[error("the Node.js worker running this function exited unexpectedly ({status}){stderr}")]
    Exited { status: String, stderr: String },
    #[error("talking to the Node.js worker: {0}")]
    Channel(#[from] std::io::Error),
    #[error(transparent)]
    Busy(#[from] TooManyNodeActions),
    #[error("the Node.js worker sent an invalid message: {0}")]
    Protocol(#[from] serde_json::Error),
}

/// A call refused because `max_concurrent` Node.js actions are running already.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "Too many concurrent Node.js actions: {0} are running, the most this server allows \
     (`convect serve --node-max-concurrent`). Try again later."
)]
pub struct TooManyNodeActions(pub usize);

impl From<NodeError> for JsFailure {
    fn from(e: NodeError) -> Self {
        JsFailure::new(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The `node` binary; `None` looks for `node` on PATH.
    pub node: Option<PathBuf>,
    /// Idle workers kept warm for the next calls; more may run at once.
    pub warm_workers: usize,
    /// Live workers (busy or idle) at most: one per running Node.js action.
    pub max_concurrent: usize,
    /// Bundle files and the worker script, e.g. `<data>/node`.
    pub scratch_dir: PathBuf,
}

impl NodeConfig {
    /// Each idle worker is a process with its own heap.
    pub fn default_warm_workers() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2)
    }

    /// Generous: actions mostly wait on I/O, and nested `ctx.runAction` calls
    /// each hold a worker of their own while their callers wait.
    pub const DEFAULT_MAX_CONCURRENT: usize = 64;
}

/// Worker processes, spawned on demand up to `max_concurrent`; up to
/// `warm_workers` idle ones are kept.
pub struct NodePool {
    node: Option<PathBuf>,
    /// One permit per live worker.
    live: Arc<Semaphore>,
    max_concurrent: usize,
    warm_workers: usize,
    idle: Mutex<Vec<Pooled>>,
    /// Signalled when a worker goes back to `idle`.
    returned: Notify,
    scratch: Scratch,
    next_call: AtomicU64,
    next_worker: AtomicU64,
}

/// How long a call waits for a busy worker to come back, once the warm ones
/// are all busy, before starting another: long enough that a loaded server
/// reuses its warm workers, short enough that an action waiting in
/// `ctx.runAction` for the call behind it is never stuck.
const WAIT_FOR_IDLE: Duration = Duration::from_millis(20);

/// A live worker and its permit, released when the worker is dropped (killed).
struct Pooled {
    worker: Worker,
    _live: OwnedSemaphorePermit,
}

/// A worker checked out for one execution. Dropping it returns the worker to the
/// pool if its execution finished and the pool wants it; otherwise (a failure, a
/// worker that is exiting, or the call's future was dropped mid-execution) the
/// process is killed.
struct Lease<'a> {
    pool: &'a NodePool,
    worker: Option<Pooled>,
    finished: bool,
}

impl Lease<'_> {
    fn worker(&mut self) -> &mut Worker {
        &mut self.worker.as_mut().expect("a lease holds its worker until dropped").worker
    }

    /// The worker reported its outcome and is idle again.
    fn finished(&mut self) {
        self.finished = true;
    }

    /// The worker may be mid-execution or gone: never hand it out again, and make
    /// sure it is gone before the call reports its failure.
    async fn discard(&mut self) {
        if let Some(pooled) = self.worker.take() {
            pooled.worker.kill().await;
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let reusable = |p: &Pooled| !p.worker.exiting();
        let Some(pooled) = self.worker.take().filter(|p| self.finished && reusable(p)) else { return };
        let mut idle = self.pool.idle.lock().expect("node pool poisoned");
        if idle.len() < self.pool.warm_workers {
            idle.push(pooled);
            self.pool.returned.notify_one();
        }
    }
}

impl NodePool {
    /// Lazy: spawns nothing until the first call.
    pub fn new(config: NodeConfig) -> NodePool {
        NodePool {
            node: config.node.clone(),
            live: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            max_concurrent: config.max_concurrent.max(1),
            warm_workers: config.warm_workers,
            idle: Mutex::new(Vec::new()),
            returned: Notify::new(),
            scratch: Scratch::new(config.scratch_dir, config.node),
            next_call: AtomicU64::new(1),
            next_worker: AtomicU64::new(1),
        }
    }

    /// Loads each entry module of `bundle` in a worker and describes its exports, in
    /// the same shape as `Isolate::analyze`. A failure names the module
    /// (`Failed to analyze dir/file.js: ...`).
    pub async fn analyze(
        &self,
        bundle: &Arc<NodeBundle>,
        modules: Vec<String>,
        env: Arc<BTreeMap<String, String>>,
    ) -> Result<BTreeMap<String, ModuleAnalysis>, JsFailure> {
        let dir = self.scratch.materialize(bundle).await?;
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let request = Request::Analyze { call, dir: &dir, modules: &modules, env: &env };
        let mut logs = Vec::new();
        let outcome = self.exchange(&bundle.key, &request, ANALYZE_TIME_LIMIT, &mut NoSyscalls, &mut logs).await?;
        for line in logs {
            tracing::info!(target: "convect::node", "{line}");
        }
        let Some(outcome) = outcome else {
            return Err(JsFailure::new(format!("Loading the \"use node\" modules took longer than {ANALYZE_TIME_LIMIT:?}.")));
        };
        serde_json::from_str(&parse_outcome(&outcome)?)
            .map_err(|e| JsFailure::new(format!("bad module analysis from the Node.js worker: {e}")))
    }

    /// Runs one action against `host`, which answers its syscalls as it does for
    /// the QuickJS runtime; refused when `max_concurrent` actions are running.
    pub async fn run<H: Host + Send + 'static>(
        &self,
        bundle: &Arc<NodeBundle>,
        exec: Execution,
        mut host: H,
    ) -> Result<ExecOutcome, TooManyNodeActions> {
        let mut log_lines = Vec::new();
        let result = match self.run_logged(bundle, &exec, &mut host, &mut log_lines).await {
            Ok(result) => result,
            Err(NodeError::Busy(busy)) => return Err(busy),
            Err(e) => Err(e.into()),
        };
        Ok(ExecOutcome { result, log_lines })
    }

    /// The action's own outcome, or why the runtime could not produce one.
    async fn run_logged<H: Host + Send>(
        &self,
        bundle: &Arc<NodeBundle>,
        exec: &Execution,
        host: &mut H,
        logs: &mut Vec<String>,
    ) -> Result<Result<String, JsFailure>, NodeError> {
        debug_assert_eq!(exec.kind, UdfKind::Action, "only actions run in Node.js");
        let dir = self.scratch.materialize(bundle).await?;
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let meta = exec.meta_json();
        let request = Request::Run { call, dir: &dir, module: &exec.module, export: &exec.export, args_json: &exec.args_json, meta: &meta };
        // The limit covers syscall time too, as it does for QuickJS actions.
        Ok(match self.exchange(&bundle.key, &request, exec.time_limit, host, logs).await? {
            Some(outcome) => parse_outcome(&outcome),
            None => Err(exec.node_timeout()),
        })
    }

    /// Runs `request` on a worker, serving its syscalls through `host`; `None` if it
    /// ran out of time. A worker that fails or overruns is killed.
    async fn exchange<H: Host + Send>(
        &self,
        key: &str,
        request: &Request<'_>,
        limit: Duration,
        host: &mut H,
        logs: &mut Vec<String>,
    ) -> Result<Option<String>, NodeError> {
        let mut lease = self.lease(key).await?;
        match tokio::time::timeout(limit, lease.worker().call(key, request, host, logs)).await {
            Ok(Ok(outcome)) => {
                lease.finished();
                Ok(Some(outcome))
            }
            Ok(Err(e)) => {
                lease.discard().await;
                Err(e)
            }
            Err(_) => {
                lease.discard().await;
                Ok(None)
            }
        }
    }

    /// Takes an idle worker (preferably one that has `key` loaded), or spawns one
    /// while fewer than the warm ones live; past that, waits up to `WAIT_FOR_IDLE`
    /// for one to come back before spawning anyway, so no call waits on a busy
    /// worker for long (nested `ctx.runAction` chains cannot deadlock).
    async fn lease(&self, key: &str) -> Result<Lease<'_>, NodeError> {
        let give_up = tokio::time::Instant::now() + WAIT_FOR_IDLE;
        let worker = loop {
            if let Some(pooled) = self.take_idle(key) {
                break pooled;
            }
            let live = self.max_concurrent - self.live.available_permits();
            if live < self.warm_workers || tokio::time::timeout_at(give_up, self.returned.notified()).await.is_err() {
                break self.spawn().await?;
            }
        };
        Ok(Lease { pool: self, worker: Some(worker), finished: false })
    }

    fn take_idle(&self, key: &str) -> Option<Pooled> {
        let mut idle = self.idle.lock().expect("node pool poisoned");
        // A worker may have ended while idle (an error thrown by a timer an
        // earlier action left behind ends it); dropping it frees its permit.
        idle.retain_mut(|p| !p.worker.has_exited());
        // A worker serves one bundle: its modules load as `convex:/user/<path>`,
        // as on Convex, and those URLs name no bundle. One without any will do too.
        let usable = idle.iter().position(|p| p.worker.has_bundle(key)).or_else(|| idle.iter().position(|p| p.worker.bundles() == 0));
        if usable.is_none() {
            // Workers of another bundle (an older deploy's, mostly) give way, so
            // that the warm slots go to the bundle in use.
            idle.clear();
        }
        usable.map(|i| idle.swap_remove(i))
    }

    async fn spawn(&self) -> Result<Pooled, NodeError> {
        // The semaphore is never closed: no permit means every one is taken.
        let live = self.live.clone().try_acquire_owned().map_err(|_| TooManyNodeActions(self.max_concurrent))?;
        let script = self.scratch.worker_script().await?;
        let id = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let worker = Worker::spawn(self.node.as_deref(), &script, self.scratch.root(), id)?;
        Ok(Pooled { worker, _live: live })
    }
}
