//! The `Committer`: the single writer. It assigns strictly increasing commit
//! timestamps, validates each transaction optimistically against the writes
//! committed after its snapshot, and makes batches of commits durable in one
//! SQLite transaction (group commit) before acknowledging any of them.

use crate::catalog::Catalog;
use crate::storage::{CatalogWrite, CommitRecord, DocumentWrite, IndexWrite, Persistence, StorageError};
use crate::txn::ReadSet;
use crate::types::{IndexId, Timestamp};
use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, watch};

/// Commits older than this many entries are forgotten; a transaction whose snapshot
/// predates the forgotten ones is treated as conflicting and re-run.
const RECENT_COMMITS: usize = 100_000;
const MAX_BATCH: usize = 512;

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// Re-running is only useful once `retry_after` is visible to snapshots.
    /// `table` holds the conflicting read, when it was one of a table's indexes.
    #[error("the transaction conflicted with a concurrent write")]
    Conflict { retry_after: Timestamp, table: Option<String> },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Rejected(String),
    #[error("the committer has stopped")]
    Stopped,
}

/// A transaction's writes, ready for validation.
#[derive(Debug, Default)]
pub struct PreparedCommit {
    pub snapshot: Timestamp,
    pub deployment_version: u64,
    pub reads: ReadSet,
    pub documents: Vec<DocumentWrite>,
    pub index_entries: Vec<IndexWrite>,
    /// Every index key the writes touch, old and new, changed or not: readers of
    /// any of them may see a different document now.
    pub written_keys: Vec<(IndexId, Vec<u8>)>,
}

/// Work that needs the writer to itself (deploys, table creation). It runs after
/// every earlier commit is durable and before any later one is validated.
pub type ExclusiveJob =
    Box<dyn FnOnce(&mut ExclusiveCtx) -> Result<serde_json::Value, CommitError> + Send>;

/// What an exclusive job may use: the store, the catalog, and a way to stage
/// catalog writes and commits that become durable together when the job returns Ok.
pub struct ExclusiveCtx<'a> {
    pub store: &'a dyn Persistence,
    pub catalog: &'a RwLock<Catalog>,
    pub latest: Timestamp,
    pub catalog_writes: Vec<CatalogWrite>,
    pub commits: Vec<CommitRecord>,
    pub bump_deployment: bool,
    /// With `bump_deployment`: installs what the new deployment version stands
    /// for. It runs once the job is durable and before the version's timestamp is
    /// published, so nothing that runs at that timestamp (a live query re-run,
    /// a new snapshot) can still see the old deployment.
    pub on_new_deployment: Option<NewDeploymentHook>,
    next_ts: Timestamp,
}

/// Called with the new deployment version; see `ExclusiveCtx::on_new_deployment`.
pub type NewDeploymentHook = Box<dyn FnOnce(u64) + Send>;

impl ExclusiveCtx<'_> {
    pub fn next_ts(&mut self) -> Timestamp {
        self.next_ts = next_timestamp(self.next_ts);
        self.next_ts
    }
}

enum Request {
    Commit(Box<PreparedCommit>, oneshot::Sender<Result<Timestamp, CommitError>>),
    Exclusive(ExclusiveJob, oneshot::Sender<Result<serde_json::Value, CommitError>>),
}

/// The index keys one commit wrote, shared between the OCC log and subscribers.
pub type WrittenKeys = Arc<Vec<(IndexId, Vec<u8>)>>;

/// A summary of one commit, for subscriptions.
#[derive(Debug, Clone)]
pub struct CommitSummary {
    pub ts: Timestamp,
    pub written_keys: WrittenKeys,
    /// Set when anything may have changed (a deploy): every query must re-run.
    pub everything: bool,
}

impl CommitSummary {
    pub fn everything(ts: Timestamp) -> Self {
        CommitSummary { ts, written_keys: Arc::default(), everything: true }
    }
}

#[derive(Clone)]
pub struct Committer {
    requests: mpsc::Sender<Request>,
    latest: watch::Receiver<Timestamp>,
    deployment_version: Arc<std::sync::atomic::AtomicU64>,
    commits: tokio::sync::broadcast::Sender<Arc<CommitSummary>>,
}

fn next_timestamp(last: Timestamp) -> Timestamp {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    now.max(last + 1)
}

impl Committer {
    pub fn start(store: Arc<dyn Persistence>, catalog: Arc<RwLock<Catalog>>, max_ts: Timestamp) -> Committer {
        let (tx, rx) = mpsc::channel();
        let (latest_tx, latest) = watch::channel(max_ts);
        let deployment_version = Arc::new(std::sync::atomic::AtomicU64::new(1));
        let (commits, _) = tokio::sync::broadcast::channel(4096);
        let mut worker = Worker {
            store,
            catalog,
            recent: VecDeque::new(),
            horizon: max_ts,
            last_ts: max_ts,
            latest: latest_tx,
            deployment_version: deployment_version.clone(),
            commits: commits.clone(),
        };
        std::thread::Builder::new()
            .name("committer".into())
            .spawn(move || worker.run(rx))
            .expect("spawn committer thread");
        Committer { requests: tx, latest, deployment_version, commits }
    }

    /// The newest durable commit: every snapshot read starts here.
    pub fn latest(&self) -> Timestamp {
        *self.latest.borrow()
    }

    /// Resolves once commits up to `ts` are visible to new snapshots.
    pub async fn wait_for(&self, ts: Timestamp) {
        let mut latest = self.latest.clone();
        let _ = latest.wait_for(|t| *t >= ts).await;
    }

    pub fn subscribe_commits(&self) -> tokio::sync::broadcast::Receiver<Arc<CommitSummary>> {
        self.commits.subscribe()
    }

    pub fn deployment_version(&self) -> u64 {
        self.deployment_version.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub async fn commit(&self, commit: PreparedCommit) -> Result<Timestamp, CommitError> {
        if commit.documents.is_empty() {
            // A read-only transaction is serializable at its snapshot: later commits
            // cannot invalidate it and there is nothing to make durable, so it needs
            // neither validation nor a timestamp (nor an fsync) of its own.
            if commit.deployment_version != self.deployment_version() {
                return Err(CommitError::Conflict { retry_after: commit.snapshot, table: None });
            }
            return Ok(commit.snapshot);
        }
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Commit(Box::new(commit), tx)).map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }

    pub fn exclusive_blocking(&self, job: ExclusiveJob) -> Result<serde_json::Value, CommitError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Exclusive(job, tx)).map_err(|_| CommitError::Stopped)?;
        rx.blocking_recv().map_err(|_| CommitError::Stopped)?
    }

    pub async fn exclusive(&self, job: ExclusiveJob) -> Result<serde_json::Value, CommitError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Exclusive(job, tx)).map_err(|_| CommitError::Stopped)?;
        rx.await.map_err(|_| CommitError::Stopped)?
    }
}

struct Worker {
    store: Arc<dyn Persistence>,
    catalog: Arc<RwLock<Catalog>>,
    recent: VecDeque<(Timestamp, WrittenKeys)>,
    /// No commit at or below this timestamp is in `recent` any more.
    horizon: Timestamp,
    last_ts: Timestamp,
    latest: watch::Sender<Timestamp>,
    deployment_version: Arc<std::sync::atomic::AtomicU64>,
    commits: tokio::sync::broadcast::Sender<Arc<CommitSummary>>,
}

type Pending = Vec<(oneshot::Sender<Result<Timestamp, CommitError>>, Timestamp)>;

impl Worker {
    fn run(&mut self, rx: mpsc::Receiver<Request>) {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
        tracing::info!("committer stopped");
    }

    fn process(&mut self, batch: Vec<Request>) {
        let mut records = Vec::new();
        let mut pending: Pending = Vec::new();
        for request in batch {
            match request {
                Request::Commit(commit, reply) => match self.validate(&commit) {
                    Ok(()) => {
                        let ts = next_timestamp(self.last_ts);
                        self.last_ts = ts;
                        self.remember(ts, commit.written_keys);
                        records.push(CommitRecord { ts, documents: commit.documents, index_entries: commit.index_entries });
                        pending.push((reply, ts));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Request::Exclusive(job, reply) => {
                    self.flush(std::mem::take(&mut records), std::mem::take(&mut pending));
                    let _ = reply.send(self.run_exclusive(job));
                }
            }
        }
        self.flush(records, pending);
    }

    fn validate(&self, commit: &PreparedCommit) -> Result<(), CommitError> {
        let conflict = |table| CommitError::Conflict { retry_after: self.last_ts, table };
        if commit.deployment_version != self.deployment_version.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(conflict(None));
        }
        if commit.snapshot < self.horizon && !commit.reads.is_empty() {
            return Err(conflict(None));
        }
        let newer = self.recent.iter().rev().take_while(|(ts, _)| *ts > commit.snapshot);
        for (_, keys) in newer {
            if let Some((index, _)) = keys.iter().find(|(index, key)| commit.reads.overlaps(*index, key)) {
                // Named in the error a mutation reports once it stops retrying.
                let table = self.catalog.read().expect("catalog poisoned").table_of_index(*index).map(str::to_owned);
                return Err(conflict(table));
            }
        }
        Ok(())
    }

    fn remember(&mut self, ts: Timestamp, keys: Vec<(IndexId, Vec<u8>)>) {
        self.recent.push_back((ts, Arc::new(keys)));
        while self.recent.len() > RECENT_COMMITS {
            if let Some((old, _)) = self.recent.pop_front() {
                self.horizon = old;
            }
        }
    }

    /// Makes `records` durable and acknowledges them, or fails them all.
    fn flush(&mut self, records: Vec<CommitRecord>, pending: Pending) {
        if records.is_empty() {
            return;
        }
        match self.store.write(&[], &records) {
            Ok(()) => {
                let ts = records.last().map(|r| r.ts).unwrap_or(self.last_ts);
                self.publish(ts, &records);
                for (reply, ts) in pending {
                    let _ = reply.send(Ok(ts));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "commit batch failed");
                self.forget_after(records[0].ts);
                for (reply, _) in pending {
                    let _ = reply.send(Err(CommitError::Rejected(format!("the write could not be made durable: {e}"))));
                }
            }
        }
    }

    fn forget_after(&mut self, first_failed: Timestamp) {
        while self.recent.back().is_some_and(|(ts, _)| *ts >= first_failed) {
            self.recent.pop_back();
        }
    }

    fn publish(&self, ts: Timestamp, records: &[CommitRecord]) {
        for record in records {
            let keys = self
                .recent
                .iter()
                .rev()
                .find(|(t, _)| *t == record.ts)
                .map(|(_, k)| k.clone())
                .unwrap_or_default();
            let _ = self.commits.send(Arc::new(CommitSummary { ts: record.ts, written_keys: keys, everything: false }));
        }
        self.latest.send_replace(ts);
    }

    fn run_exclusive(&mut self, job: ExclusiveJob) -> Result<serde_json::Value, CommitError> {
        let mut ctx = ExclusiveCtx {
            store: self.store.as_ref(),
            catalog: &self.catalog,
            latest: self.last_ts,
            catalog_writes: Vec::new(),
            commits: Vec::new(),
            bump_deployment: false,
            on_new_deployment: None,
            next_ts: self.last_ts,
        };
        let out = job(&mut ctx)?;
        let (writes, commits, bump, next_ts) = (ctx.catalog_writes, ctx.commits, ctx.bump_deployment, ctx.next_ts);
        let install = ctx.on_new_deployment;
        self.store.write(&writes, &commits)?;
        apply_to_catalog(&mut self.catalog.write().expect("catalog poisoned"), &writes);
        self.last_ts = self.last_ts.max(next_ts);
        if bump {
            // A deploy can change every query's result, so it gets a timestamp of its
            // own: clients never see two different states at one timestamp.
            self.last_ts = next_timestamp(self.last_ts);
            let version = self.deployment_version.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if let Some(install) = install {
                install(version);
            }
            self.latest.send_replace(self.last_ts);
            let _ = self.commits.send(Arc::new(CommitSummary::everything(self.last_ts)));
        }
        if !commits.is_empty() {
            // Readers of anything may be affected by an exclusive job; start a new horizon.
            self.recent.clear();
            self.horizon = self.last_ts;
            self.latest.send_replace(self.last_ts);
        }
        Ok(out)
    }
}

/// Mirrors durable catalog writes into the in-memory catalog.
fn apply_to_catalog(catalog: &mut Catalog, writes: &[CatalogWrite]) {
    for w in writes {
        match w {
            CatalogWrite::CreateTable(t) => catalog.add_table(t),
            CatalogWrite::CreateIndex(i) => catalog.add_index(i),
            CatalogWrite::DropIndex(id) => catalog.remove_index(*id),
            _ => {}
        }
    }
}
