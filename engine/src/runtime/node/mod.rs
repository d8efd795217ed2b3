//! The Node.js runtime for `"use node"` actions: the only code that starts or talks
//! to `node`. It owns a pool of worker processes (`worker.rs`), the bundle files they
//! import (`scratch.rs`) and the worker script (`worker.js`, evaluated after the entry
//! points shared with QuickJS in `../shared.js`). A worker runs one execution at a
//! time against a `Host`, exactly as an `Isolate` does, and answers over a socket on
//! its fd 3, because user code owns stdout and stderr (forwarded to tracing).

mod scratch;
mod worker;

use super::{parse_outcome, ExecOutcome, Execution, Host, JsFailure, ModuleAnalysis, NodeBundle, UdfKind};
use scratch::Scratch;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use worker::{NoSyscalls, Request, Worker};

/// Loading a deployment's modules for analysis must not hang a deploy.
const ANALYZE_TIME_LIMIT: Duration = Duration::from_secs(60);
/// A worker keeps every bundle it imported in memory, so after this many distinct
/// bundles it is retired rather than kept warm.
const MAX_BUNDLES_PER_WORKER: usize = 4;

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
    #[error("the Node.js worker running this function exited unexpectedly ({status}){stderr}")]
    Exited { status: String, stderr: String },
    #[error("talking to the Node.js worker: {0}")]
    Channel(#[from] std::io::Error),
    #[error("the Node.js worker sent an invalid message: {0}")]
    Protocol(#[from] serde_json::Error),
}

impl From<NodeError> for JsFailure {
    fn from(e: NodeError) -> Self {
        JsFailure::new(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The `node` binary; `None` looks for `node` on PATH.
    pub node: Option<PathBuf>,
    pub max_workers: usize,
    /// Bundle files and the worker script, e.g. `<data>/node`.
    pub scratch_dir: PathBuf,
}

impl NodeConfig {
    /// Workers mostly wait on I/O, but each is a process with its own heap.
    pub fn default_max_workers() -> usize {
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2)
    }
}

/// Worker processes, spawned on demand up to `max_workers` and kept warm.
pub struct NodePool {
    node: Option<PathBuf>,
    slots: Arc<Semaphore>,
    idle: Mutex<Vec<Worker>>,
    scratch: Scratch,
    next_call: AtomicU64,
    next_worker: AtomicU64,
}

/// A worker checked out for one execution. Dropping it returns the worker to the
/// pool if its execution finished; otherwise (a failure, or the call's future was
/// dropped mid-execution) the process is killed.
struct Lease<'a> {
    pool: &'a NodePool,
    worker: Option<Worker>,
    finished: bool,
    _slot: OwnedSemaphorePermit,
}

impl Lease<'_> {
    fn worker(&mut self) -> &mut Worker {
        self.worker.as_mut().expect("a lease holds its worker until dropped")
    }

    /// The worker reported its outcome and is idle again.
    fn finished(&mut self) {
        self.finished = true;
    }

    /// The worker may be mid-execution or gone: never hand it out again, and make
    /// sure it is gone before the call reports its failure.
    async fn discard(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.kill().await;
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let reusable = self.finished && self.worker.as_ref().is_some_and(|w| w.bundles() <= MAX_BUNDLES_PER_WORKER);
        if let Some(w) = self.worker.take().filter(|_| reusable) {
            self.pool.idle.lock().expect("node pool poisoned").push(w);
        }
    }
}

impl NodePool {
    /// Lazy: spawns nothing until the first call.
    pub fn new(config: NodeConfig) -> NodePool {
        NodePool {
            node: config.node,
            slots: Arc::new(Semaphore::new(config.max_workers.max(1))),
            idle: Mutex::new(Vec::new()),
            scratch: Scratch::new(config.scratch_dir),
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
    /// the QuickJS runtime.
    pub async fn run<H: Host + Send + 'static>(&self, bundle: &Arc<NodeBundle>, exec: Execution, mut host: H) -> ExecOutcome {
        let mut log_lines = Vec::new();
        let result = self.run_logged(bundle, &exec, &mut host, &mut log_lines).await;
        ExecOutcome { result, log_lines }
    }

    async fn run_logged<H: Host + Send>(
        &self,
        bundle: &Arc<NodeBundle>,
        exec: &Execution,
        host: &mut H,
        logs: &mut Vec<String>,
    ) -> Result<String, JsFailure> {
        debug_assert_eq!(exec.kind, UdfKind::Action, "only actions run in Node.js");
        let dir = self.scratch.materialize(bundle).await?;
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        let meta = exec.meta_json();
        let request = Request::Run { call, dir: &dir, module: &exec.module, export: &exec.export, args_json: &exec.args_json, meta: &meta };
        // The limit covers syscall time too, as it does for QuickJS actions.
        match self.exchange(&bundle.key, &request, exec.time_limit, host, logs).await? {
            Some(outcome) => parse_outcome(&outcome),
            None => Err(exec.timeout_failure()),
        }
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

    /// Waits for a free slot, then takes an idle worker (preferably one that has
    /// `key` loaded) or spawns one.
    async fn lease(&self, key: &str) -> Result<Lease<'_>, NodeError> {
        let slot = self.slots.clone().acquire_owned().await.expect("the node pool's semaphore is never closed");
        let idle = {
            let mut idle = self.idle.lock().expect("node pool poisoned");
            let warm = idle.iter().position(|w| w.has_bundle(key));
            warm.or(idle.len().checked_sub(1)).map(|i| idle.swap_remove(i))
        };
        let worker = match idle {
            Some(w) => w,
            None => {
                let script = self.scratch.worker_script().await?;
                let id = self.next_worker.fetch_add(1, Ordering::Relaxed);
                Worker::spawn(self.node.as_deref(), &script, self.scratch.root(), id)?
            }
        };
        Ok(Lease { pool: self, worker: Some(worker), finished: false, _slot: slot })
    }
}
