//! `Engine`: the running backend. It wires storage, catalog, committer, the live
//! deployment and the isolate pools together, and is what the HTTP server and the
//! CLI's `serve` hold. Cheap to clone.

use crate::catalog::Catalog;
use crate::committer::Committer;
use crate::deployment::{Deployment, DeploymentRecord};
use crate::env_vars::{apply_changes, EnvError, EnvVars, PublicUrls};
use crate::file_storage::{FileStorage, FileStorageOptions};
use crate::scheduler::SchedulerOptions;
use crate::runtime::{ModuleSources, NodeConfig, NodePool};
use crate::storage::{Persistence, SqliteStore};
use crate::txn::TxnEnv;
use crate::udf::{IsolatePool, WhenBusy};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("opening the database at {path}: {source}")]
    Storage { path: String, source: crate::storage::StorageError },
    #[error("the stored deployment is unreadable: {0}")]
    Deployment(String),
    #[error("opening file storage at {path}: {source}")]
    Files { path: String, source: std::io::Error },
}

pub(crate) struct Inner {
    pub store: Arc<dyn Persistence>,
    pub catalog: Arc<RwLock<Catalog>>,
    pub committer: Committer,
    pub deployment: RwLock<Arc<Deployment>>,
    /// The variables set for the deployment; functions see them with the
    /// built-ins, as `Deployment::env`.
    pub env: RwLock<Arc<EnvVars>>,
    pub urls: PublicUrls,
    pub udf_pool: IsolatePool,
    pub action_pool: IsolatePool,
    /// `"use node"` actions.
    pub node_pool: NodePool,
    pub action_timeout: Duration,
    pub deploy_lock: tokio::sync::Mutex<()>,
    /// Mutations re-run after a conflict take turns here (FIFO), so that under
    /// contention on a hot document every mutation eventually wins.
    pub retry_lane: tokio::sync::Mutex<()>,
    pub http: reqwest::Client,
    pub files: FileStorage,
    pub scheduler: SchedulerOptions,
}

/// How functions run and files are kept, as `convect serve` configures it.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The `node` binary for `"use node"` actions; `None`: the one on PATH.
    pub node: Option<PathBuf>,
    /// Idle Node.js workers kept warm.
    pub node_warm_workers: usize,
    /// Node.js actions running at once at most; more are refused, not queued.
    pub node_max_concurrent: usize,
    /// How long an action may run, in either runtime.
    pub action_timeout: Duration,
    pub files: FileStorageOptions,
    pub scheduler: SchedulerOptions,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            node: None,
            node_warm_workers: NodeConfig::default_warm_workers(),
            node_max_concurrent: NodeConfig::DEFAULT_MAX_CONCURRENT,
            action_timeout: DEFAULT_ACTION_TIMEOUT,
            files: FileStorageOptions::default(),
            scheduler: SchedulerOptions::default(),
        }
    }
}

/// Convex's limit for actions: 10 minutes.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

/// Threads for queries and mutations; actions wait on I/O, so they get more.
fn udf_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2)
}
/// Action threads kept warm; more start while actions wait on each other
/// (`ctx.runAction`), up to `ACTION_MAX_THREADS`.
const ACTION_THREADS: usize = 16;
const ACTION_MAX_THREADS: usize = 128;

impl Engine {
    /// Opens (or creates) the database file and restores the last deployment;
    /// `urls` are where clients reach this server. `"use node"` actions keep
    /// their files under `node/` next to the database, file storage under `files/`.
    pub fn open(db_path: &Path, urls: PublicUrls, options: RuntimeOptions) -> Result<Engine, OpenError> {
        let storage_err = |source| OpenError::Storage { path: db_path.display().to_string(), source };
        let store: Arc<dyn Persistence> = Arc::new(SqliteStore::open(db_path).map_err(storage_err)?);
        let state = store.load().map_err(storage_err)?;
        let mut catalog = Catalog::from_persisted(&state);
        // System tables exist before the first transaction looks for them.
        let mut system_tables = crate::file_storage::table::plan_system_tables(&mut catalog);
        system_tables.extend(crate::scheduler::jobs::plan_system_tables(&mut catalog));
        system_tables.extend(crate::scheduler::crons::plan_system_tables(&mut catalog));
        store.write(&system_tables, &[]).map_err(storage_err)?;
        let catalog = Arc::new(RwLock::new(catalog));
        let data_dir = db_path.parent().unwrap_or(Path::new("."));
        let files_dir = data_dir.join("files");
        let files = FileStorage::open(&files_dir, &urls.cloud, options.files)
            .map_err(|source| OpenError::Files { path: files_dir.display().to_string(), source })?;
        let committer = Committer::start(store.clone(), catalog.clone(), state.max_ts);
        let mut deployment = match &state.deployment {
            Some(json) => restore_deployment(store.as_ref(), json, committer.deployment_version())?,
            None => Deployment { version: committer.deployment_version(), ..Default::default() },
        };
        let env: EnvVars = state.env.into_iter().collect();
        deployment.env = urls.function_env(&env);
        let inner = Inner {
            store,
            catalog,
            committer,
            deployment: RwLock::new(Arc::new(deployment)),
            env: RwLock::new(Arc::new(env)),
            urls,
            udf_pool: IsolatePool::start("udf", udf_threads(), WhenBusy::Queue),
            action_pool: IsolatePool::start("action", ACTION_THREADS, WhenBusy::Grow { max: ACTION_MAX_THREADS }),
            node_pool: NodePool::new(NodeConfig {
                node: options.node,
                warm_workers: options.node_warm_workers,
                max_concurrent: options.node_max_concurrent,
                scratch_dir: data_dir.join("node"),
            }),
            action_timeout: options.action_timeout,
            deploy_lock: tokio::sync::Mutex::new(()),
            retry_lane: tokio::sync::Mutex::new(()),
            http: reqwest::Client::new(),
            files,
            scheduler: options.scheduler,
        };
        Ok(Engine { inner: Arc::new(inner) })
    }

    pub fn deployment(&self) -> Arc<Deployment> {
        self.inner.deployment.read().expect("deployment lock poisoned").clone()
    }

    pub fn env_vars(&self) -> Arc<EnvVars> {
        self.inner.env.read().expect("env lock poisoned").clone()
    }

    /// `process.env` for functions of a deployment made now.
    pub(crate) fn function_env(&self) -> Arc<EnvVars> {
        self.inner.urls.function_env(&self.env_vars())
    }

    pub fn committer(&self) -> &Committer {
        &self.inner.committer
    }

    pub fn store(&self) -> &Arc<dyn Persistence> {
        &self.inner.store
    }

    pub(crate) fn http(&self) -> reqwest::Client {
        self.inner.http.clone()
    }

    pub(crate) fn txn_env(&self, deployment: &Deployment) -> TxnEnv {
        TxnEnv {
            store: self.inner.store.clone(),
            catalog: self.inner.catalog.clone(),
            committer: self.inner.committer.clone(),
            schema: deployment.schema.clone(),
            deployment_version: deployment.version,
        }
    }
}

fn restore_deployment(store: &dyn Persistence, json: &str, version: u64) -> Result<Deployment, OpenError> {
    let record: DeploymentRecord = serde_json::from_str(json).map_err(|e| OpenError::Deployment(e.to_string()))?;
    let mut sources = HashMap::new();
    for m in &record.modules {
        let source = store
            .module_source(&m.hash)
            .map_err(|e| OpenError::Deployment(e.to_string()))?
            .ok_or_else(|| OpenError::Deployment(format!("module {} ({}) is missing", m.path, m.hash)))?;
        sources.insert(m.path.clone(), source);
    }
    let sources: ModuleSources = Arc::new(sources);
    Deployment::build(version, record, sources).map_err(|e| OpenError::Deployment(e.to_string()))
}

impl Engine {
    /// Sets (`Some`) or removes (`None`) deployment environment variables. Like a
    /// deploy, this is a new deployment version at a timestamp of its own: every
    /// live query re-runs, modules reload with the new `process.env`, and a
    /// mutation that ran with the old values conflicts and re-runs.
    pub async fn set_env(&self, changes: Vec<(String, Option<String>)>) -> Result<(), EnvError> {
        // Deploys carry the variables into the deployment they install.
        let _deploying = self.inner.deploy_lock.lock().await;
        let vars = Arc::new(apply_changes(&self.env_vars(), &changes)?);
        let writes: Vec<_> = changes
            .into_iter()
            .map(|(name, value)| crate::storage::CatalogWrite::SetEnv { name, value })
            .collect();
        let engine = self.clone();
        self.inner
            .committer
            .exclusive(Box::new(move |ctx| {
                ctx.catalog_writes.extend(writes);
                ctx.bump_deployment = true;
                ctx.on_new_deployment = Some(Box::new(move |version| engine.install_env(version, vars)));
                Ok(serde_json::Value::Null)
            }))
            .await?;
        Ok(())
    }

    /// The live deployment again, as `version`, with `vars`.
    fn install_env(&self, version: u64, vars: Arc<EnvVars>) {
        let env = self.inner.urls.function_env(&vars);
        let next = Deployment { version, env, ..(*self.deployment()).clone() };
        *self.inner.env.write().expect("env lock poisoned") = vars;
        *self.inner.deployment.write().expect("deployment lock poisoned") = Arc::new(next);
    }
}
