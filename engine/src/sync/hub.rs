//! `SyncHub`: the live queries of every connected client. Identical queries (same
//! function, arguments and identity) are one shared subscription, executed once
//! per timestamp. For each batch of commits the hub re-runs only the
//! subscriptions whose read sets contain a written key, and sends each session
//! just the results that changed. It then publishes the timestamp it has
//! processed, which sessions use to move their clients forward.

use super::index::{SubId, SubscriptionIndex};
use super::protocol::{QueryId, QueryOutcome};
use crate::committer::CommitSummary;
use crate::engine::Engine;
use crate::runtime::CallerIdentity;
use crate::types::Timestamp;
use crate::udf::{Caller, Journal};
use futures::StreamExt;
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub type SessionId = u64;

/// Re-executions of one commit batch that run at once.
const RERUN_CONCURRENCY: usize = 16;

/// Changes for one session, all as of `ts`.
#[derive(Debug)]
pub struct SessionUpdate {
    pub ts: Timestamp,
    pub changes: Vec<(QueryId, QueryOutcome)>,
}

enum Request {
    Register(SessionId, mpsc::Sender<SessionUpdate>),
    Subscribe { session: SessionId, query_id: QueryId, query: LiveQuery, reply: oneshot::Sender<(QueryOutcome, Timestamp)> },
    Unsubscribe(SessionId, QueryId),
    Disconnect(SessionId),
}

/// What a client subscribes to: a query, its arguments, the journal a
/// reconnecting client hands back so that its pages keep their boundaries, and
/// who asks (an admin session also reaches internal queries).
#[derive(Debug, Clone)]
pub struct LiveQuery {
    pub path: String,
    pub args: Json,
    pub journal: Option<String>,
    pub caller: Caller,
    /// The user it runs for; only sessions with the same one share it.
    pub identity: CallerIdentity,
}

impl LiveQuery {
    fn key(&self) -> String {
        let path = crate::deployment::normalize_path(&self.path);
        let journal = self.journal.as_deref().unwrap_or("");
        format!("{path}\u{0}{}\u{0}{journal}\u{0}{:?}\u{0}{:?}", self.args, self.caller, self.identity)
    }
}

struct Subscription {
    /// The key it was created under (the journal it replays may differ).
    key: String,
    query: LiveQuery,
    outcome: QueryOutcome,
    sessions: HashSet<(SessionId, QueryId)>,
}

#[derive(Clone)]
pub struct SyncHub {
    requests: mpsc::UnboundedSender<Request>,
    processed: watch::Receiver<Timestamp>,
    next_session: Arc<AtomicU64>,
    /// Subscription query executions since start, for tests and benchmarks.
    executions: Arc<AtomicU64>,
}

impl SyncHub {
    pub fn start(engine: Engine) -> SyncHub {
        let (tx, rx) = mpsc::unbounded_channel();
        let start = engine.committer().latest();
        let (processed_tx, processed) = watch::channel(start);
        let commits = engine.committer().subscribe_commits();
        let executions = Arc::new(AtomicU64::new(0));
        let hub = Hub {
            engine,
            index: SubscriptionIndex::start(),
            subs: HashMap::new(),
            by_key: HashMap::new(),
            by_session: HashMap::new(),
            queries_of: HashMap::new(),
            sessions: HashMap::new(),
            next_sub: 1,
            ts: start,
            processed: processed_tx,
            executions: executions.clone(),
        };
        tokio::spawn(hub.run(rx, commits));
        SyncHub { requests: tx, processed, next_session: Arc::new(AtomicU64::new(1)), executions }
    }

    /// A new session and the channel its updates arrive on.
    pub fn register(&self, capacity: usize) -> (SessionId, mpsc::Receiver<SessionUpdate>) {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(capacity);
        let _ = self.requests.send(Request::Register(id, tx));
        (id, rx)
    }

    /// Subscribes and returns the current outcome and the timestamp it holds at.
    pub async fn subscribe(&self, session: SessionId, query_id: QueryId, query: LiveQuery) -> Option<(QueryOutcome, Timestamp)> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(Request::Subscribe { session, query_id, query, reply }).ok()?;
        rx.await.ok()
    }

    pub fn unsubscribe(&self, session: SessionId, query_id: QueryId) {
        let _ = self.requests.send(Request::Unsubscribe(session, query_id));
    }

    pub fn disconnect(&self, session: SessionId) {
        let _ = self.requests.send(Request::Disconnect(session));
    }

    pub fn processed(&self) -> watch::Receiver<Timestamp> {
        self.processed.clone()
    }

    pub fn query_executions(&self) -> u64 {
        self.executions.load(Ordering::Relaxed)
    }
}

struct Hub {
    engine: Engine,
    index: SubscriptionIndex,
    subs: HashMap<SubId, Subscription>,
    by_key: HashMap<String, SubId>,
    by_session: HashMap<(SessionId, QueryId), SubId>,
    /// Each session's query ids, so a disconnect touches only its own.
    queries_of: HashMap<SessionId, HashSet<QueryId>>,
    sessions: HashMap<SessionId, mpsc::Sender<SessionUpdate>>,
    next_sub: SubId,
    ts: Timestamp,
    processed: watch::Sender<Timestamp>,
    executions: Arc<AtomicU64>,
}

impl Hub {
    async fn run(mut self, mut requests: mpsc::UnboundedReceiver<Request>, mut commits: broadcast::Receiver<Arc<CommitSummary>>) {
        loop {
            tokio::select! {
                biased;
                commit = commits.recv() => match commit {
                    Ok(summary) => {
                        let mut batch = vec![summary];
                        while let Ok(more) = commits.try_recv() {
                            batch.push(more);
                        }
                        self.on_commits(batch).await;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let ts = self.engine.committer().latest();
                        self.on_commits(vec![Arc::new(CommitSummary::everything(ts))]).await;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                request = requests.recv() => match request {
                    Some(r) => self.on_request(r).await,
                    None => return,
                },
            }
        }
    }

    async fn on_request(&mut self, request: Request) {
        match request {
            Request::Register(id, tx) => {
                self.sessions.insert(id, tx);
            }
            Request::Subscribe { session, query_id, query, reply } => {
                let sub = self.subscription_for(query).await;
                let entry = self.subs.get_mut(&sub).expect("subscription exists");
                entry.sessions.insert((session, query_id));
                let _ = reply.send((entry.outcome.clone(), self.ts));
                self.queries_of.entry(session).or_default().insert(query_id);
                if let Some(old) = self.by_session.insert((session, query_id), sub) {
                    self.detach(session, query_id, old);
                }
            }
            Request::Unsubscribe(session, query_id) => {
                if let Some(set) = self.queries_of.get_mut(&session) {
                    set.remove(&query_id);
                }
                if let Some(sub) = self.by_session.remove(&(session, query_id)) {
                    self.detach(session, query_id, sub);
                }
            }
            Request::Disconnect(session) => self.drop_session(session),
        }
    }

    fn drop_session(&mut self, session: SessionId) {
        self.sessions.remove(&session);
        for query_id in self.queries_of.remove(&session).unwrap_or_default() {
            if let Some(sub) = self.by_session.remove(&(session, query_id)) {
                self.detach(session, query_id, sub);
            }
        }
    }

    fn detach(&mut self, session: SessionId, query_id: QueryId, sub: SubId) {
        let Some(entry) = self.subs.get_mut(&sub) else { return };
        entry.sessions.remove(&(session, query_id));
        if entry.sessions.is_empty() {
            let entry = self.subs.remove(&sub).expect("present");
            self.by_key.remove(&entry.key);
            self.index.remove(sub);
        }
    }

    /// The shared subscription for this query, executing it if it is new.
    async fn subscription_for(&mut self, query: LiveQuery) -> SubId {
        let key = query.key();
        if let Some(sub) = self.by_key.get(&key) {
            return *sub;
        }
        let sub = self.next_sub;
        self.next_sub += 1;
        let (outcome, journal) = self.execute(sub, &query, self.ts).await;
        // Later executions replay the journal of the first, keeping page boundaries.
        let query = LiveQuery { journal: journal.or(query.journal), ..query };
        self.by_key.insert(key.clone(), sub);
        self.subs.insert(sub, Subscription { key, query, outcome, sessions: HashSet::new() });
        sub
    }

    async fn execute(&self, sub: SubId, query: &LiveQuery, ts: Timestamp) -> (QueryOutcome, Option<String>) {
        self.executions.fetch_add(1, Ordering::Relaxed);
        let journal = Journal::replaying(query.journal.as_deref());
        let run = self.engine.query_at(&query.path, query.args.clone(), (query.caller, query.identity.clone()), ts, journal).await;
        self.index.set(sub, run.reads);
        let (result, journal) = (run.result, run.journal);
        let outcome = match result.value {
            Ok(value) => QueryOutcome::Updated { value, log_lines: result.log_lines, journal: journal.clone() },
            Err(e) => QueryOutcome::Failed { message: e.message, data: e.data, log_lines: result.log_lines, journal: journal.clone() },
        };
        (outcome, journal)
    }

    async fn on_commits(&mut self, batch: Vec<Arc<CommitSummary>>) {
        let ts = batch.iter().map(|c| c.ts).max().unwrap_or(self.ts).max(self.ts);
        let affected: HashSet<SubId> = if batch.iter().any(|c| c.everything) {
            self.subs.keys().copied().collect()
        } else {
            let keys = batch.iter().flat_map(|c| c.written_keys.iter().cloned()).collect();
            self.index.matching(keys).await
        };
        let jobs: Vec<(SubId, LiveQuery)> =
            affected.into_iter().filter_map(|sub| self.subs.get(&sub).map(|s| (sub, s.query.clone()))).collect();
        let this = &*self;
        let results: Vec<(SubId, QueryOutcome)> = futures::stream::iter(jobs)
            .map(|(sub, query)| async move { (sub, this.execute(sub, &query, ts).await.0) })
            .buffer_unordered(RERUN_CONCURRENCY)
            .collect()
            .await;
        let mut per_session: HashMap<SessionId, Vec<(QueryId, QueryOutcome)>> = HashMap::new();
        for (sub, outcome) in results {
            let Some(entry) = self.subs.get_mut(&sub) else { continue };
            if entry.outcome.same_result(&outcome) {
                continue;
            }
            for (session, query_id) in &entry.sessions {
                per_session.entry(*session).or_default().push((*query_id, outcome.clone()));
            }
            entry.outcome = outcome;
        }
        self.ts = ts;
        for (session, changes) in per_session {
            let Some(tx) = self.sessions.get(&session) else { continue };
            match tx.try_send(SessionUpdate { ts, changes }) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // A session that cannot keep up is dropped; its client reconnects
                    // and gets a fresh snapshot.
                    tracing::warn!(session, "dropping a session whose update queue is full");
                    self.drop_session(session);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => self.drop_session(session),
            }
        }
        self.processed.send_replace(ts);
    }
}
