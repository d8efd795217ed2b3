//! The executor: one task that starts due jobs in `scheduledTime` order, at
//! most `concurrency` at a time, so a burst of due jobs queues here instead
//! of crowding out clients' calls, and starts due cron jobs (which schedule
//! jobs). It wakes when a commit touches the `by_state` index (a job
//! scheduled, canceled or finished) or installs a deployment, when a job it
//! started ends, and when the next job or cron job falls due.

use super::crons;
use super::jobs::{self, Job, State, IN_PROGRESS, PENDING};
use super::INTERRUPTED;
use crate::engine::Engine;
use crate::runtime::UdfKind;
use crate::udf::now_ms;
use crate::types::IndexId;
use crate::committer::CommitSummary;
use convect_schema::{decode_index_key, DocumentId, Value};
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, Semaphore};

/// Longest sleep without a reason to wake: a safety net, not a schedule.
const IDLE_WAKE: Duration = Duration::from_secs(60);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Jobs changed per transaction by recovery and pruning.
const BATCH: usize = 500;
/// Due jobs read ahead per scan.
const READ_AHEAD: usize = 256;

/// Due jobs read ahead in one scan and started as permits free up. Each scan
/// walks past the index entries that started jobs left behind, so a scan per
/// started job would cost more the more jobs ran; the jobs are read again
/// only when the queue runs dry or a commit schedules a job it does not know.
#[derive(Default)]
struct ReadAhead {
    due: VecDeque<Job>,
    /// When the first pending job not yet due is, as of the last read.
    next_due: Option<f64>,
    /// Jobs read ahead or running at the last read: their entries changing
    /// (starting, finishing, a cancel) is no news.
    known: HashSet<DocumentId>,
    stale: bool,
}

impl ReadAhead {
    /// Whether a commit wrote a pending job this queue does not know.
    fn is_news(&self, summary: &CommitSummary, by_state: IndexId) -> bool {
        summary.written_keys.iter().filter(|(index, _)| *index == by_state).any(|(_, key)| {
            let Ok(values) = decode_index_key(key) else { return true };
            let pending = matches!(values.first(), Some(Some(Value::String(k))) if k == PENDING);
            let id = match values.last() {
                Some(Some(Value::String(id))) => DocumentId::decode(id).ok(),
                _ => None,
            };
            pending && !id.is_some_and(|id| self.known.contains(&id))
        })
    }
}

struct Executor {
    engine: Engine,
    permits: Arc<Semaphore>,
    /// Jobs started and not finished. A mutation job stays `pending` in the
    /// table until it commits, so this is what keeps it from starting twice.
    running: Arc<Mutex<HashSet<DocumentId>>>,
    finished: Arc<Notify>,
}

/// Starts the executor; call inside a tokio runtime, once per engine.
pub fn start_scheduler(engine: Engine) {
    let by_state = {
        let catalog = engine.inner.catalog.read().expect("catalog poisoned");
        catalog.table_number(jobs::SCHEDULED).and_then(|n| catalog.index(n, "by_state")).map(|i| i.id)
    };
    let Some(by_state) = by_state else {
        return tracing::error!("the _scheduled_functions table has no by_state index; scheduled functions will not run");
    };
    let concurrency = engine.inner.scheduler.concurrency.max(1);
    let executor = Executor {
        engine,
        permits: Arc::new(Semaphore::new(concurrency)),
        running: Arc::default(),
        finished: Arc::new(Notify::new()),
    };
    tokio::spawn(executor.run(by_state));
}

impl Executor {
    async fn run(self, by_state: IndexId) {
        let mut commits = self.engine.committer().subscribe_commits();
        self.fail_interrupted().await;
        let mut prune = tokio::time::interval(PRUNE_EVERY);
        let mut crons_of = None;
        let mut next_cron = None;
        let mut ahead = ReadAhead::default();
        loop {
            // Only this task writes `_cron_jobs`, so its next run stays known
            // until it passes or a deployment changes the jobs.
            if crons_of != Some(self.engine.deployment().version) || next_cron.is_some_and(|t| t <= now_ms()) {
                next_cron = self.run_crons(&mut crons_of).await;
            }
            let next_due = match self.start_due(&mut ahead) {
                Ok(next) => next,
                Err(e) => {
                    tracing::warn!(error = %e, "reading due scheduled functions failed");
                    Some(now_ms() + 1000.0)
                }
            };
            let next_due = match (next_due, next_cron) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let sleep = next_due.map_or(IDLE_WAKE, |t| Duration::from_secs_f64(((t - now_ms()) / 1000.0).clamp(0.0, IDLE_WAKE.as_secs_f64())));
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.finished.notified() => {}
                _ = prune.tick() => self.prune().await,
                commit = commits.recv() => match commit {
                    Ok(summary) if summary.everything || ahead.is_news(&summary, by_state) => {
                        ahead.stale = true;
                        // Announced before readable: wait, or the job is not seen yet.
                        self.engine.committer().wait_for(summary.ts).await;
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => ahead.stale = true,
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    /// Starts due jobs while permits last, reading ahead when needed;
    /// returns when the next job not yet started is due.
    fn start_due(&self, ahead: &mut ReadAhead) -> Result<Option<f64>, crate::txn::TxnError> {
        if ahead.stale || ahead.due.is_empty() {
            self.read_ahead(ahead)?;
        }
        while let Some(job) = ahead.due.front() {
            if job.scheduled_ms > now_ms() {
                break;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else { break };
            let job = ahead.due.pop_front().expect("a front job");
            self.running.lock().expect("running poisoned").insert(job.id);
            let (engine, running, finished) = (self.engine.clone(), self.running.clone(), self.finished.clone());
            tokio::spawn(async move {
                run_job(&engine, &job).await;
                running.lock().expect("running poisoned").remove(&job.id);
                drop(permit);
                finished.notify_one();
            });
        }
        // Jobs left due now wait for a permit, which a job's end signals: no
        // timer for them, or the loop would spin.
        Ok(match ahead.due.front() {
            Some(job) if job.scheduled_ms > now_ms() => Some(job.scheduled_ms),
            _ => ahead.next_due,
        })
    }

    /// Reads the pending jobs not yet started, earliest first.
    fn read_ahead(&self, ahead: &mut ReadAhead) -> Result<(), crate::txn::TxnError> {
        let running = self.running.lock().expect("running poisoned").clone();
        let mut txn = self.engine.begin_system();
        // Running mutation jobs are still pending; read past them.
        let pending = jobs::in_state(&mut txn, PENDING, f64::INFINITY, READ_AHEAD + running.len())?;
        let now = now_ms();
        ahead.due.clear();
        ahead.next_due = None;
        for job in pending.into_iter().filter(|j| !running.contains(&j.id)) {
            if job.scheduled_ms > now {
                ahead.next_due = Some(job.scheduled_ms);
                break;
            }
            ahead.due.push_back(job);
        }
        ahead.known = running;
        ahead.known.extend(ahead.due.iter().map(|j| j.id));
        ahead.stale = false;
        Ok(())
    }

    /// Brings `_cron_jobs` in line with a new deployment (`crons_of` is the
    /// version it matches), then starts the cron jobs that are due; returns
    /// when the next one is.
    async fn run_crons(&self, crons_of: &mut Option<u64>) -> Option<f64> {
        let deployment = self.engine.deployment();
        let now = now_ms() as i64;
        let reconciled = *crons_of == Some(deployment.version);
        let ran = self
            .engine
            .transact(|txn| {
                if !reconciled {
                    crons::reconcile(txn, &deployment, now)?;
                }
                crons::start_due(txn, &deployment, now)
            })
            .await;
        // Read after the commit: a scan sees its own transaction's moved rows
        // only within the range it has covered.
        let next = match ran {
            Ok((_, ts)) => {
                self.engine.committer().wait_for(ts).await;
                crons::next_run_ms(&mut self.engine.begin_system())
            }
            Err(e) => Err(e),
        };
        match next {
            Ok(next) => {
                *crons_of = Some(deployment.version);
                next
            }
            Err(e) => {
                tracing::warn!(error = %e, "running cron jobs failed");
                Some(now as f64 + 1000.0)
            }
        }
    }

    /// Actions that were running when the process stopped failed: they run at most once.
    async fn fail_interrupted(&self) {
        loop {
            let failed = self
                .engine
                .transact(|txn| {
                    let interrupted = jobs::in_state(txn, IN_PROGRESS, f64::INFINITY, BATCH)?;
                    for job in &interrupted {
                        jobs::transition(txn, job.id, &[IN_PROGRESS], State::Failed(INTERRUPTED.into()), now_ms())?;
                    }
                    Ok(interrupted.len())
                })
                .await;
            match failed {
                Ok((n, _)) if n == BATCH => continue,
                Ok((0, _)) => return,
                Ok((n, _)) => return tracing::warn!(jobs = n, "scheduled actions interrupted by a restart are marked failed"),
                Err(e) => return tracing::error!(error = %e, "marking interrupted scheduled actions failed did not work"),
            }
        }
    }

    /// Forgets finished jobs older than the retention period.
    async fn prune(&self) {
        let cutoff = now_ms() - self.engine.inner.scheduler.retention.as_secs_f64() * 1000.0;
        for kind in ["success", "failed", "canceled"] {
            loop {
                let pruned = self
                    .engine
                    .transact(|txn| {
                        let old = jobs::in_state(txn, kind, cutoff, BATCH)?;
                        for job in &old {
                            txn.delete(job.id)?;
                        }
                        Ok(old.len())
                    })
                    .await;
                match pruned {
                    Ok((n, _)) if n == BATCH => continue,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning finished scheduled functions failed");
                        break;
                    }
                }
            }
        }
    }
}

async fn run_job(engine: &Engine, job: &Job) {
    let kind = engine.deployment().function(&job.name).map(|f| f.kind);
    if kind == Some(UdfKind::Action) {
        // Marked before it starts: a crash from here on fails it, never re-runs it.
        let claimed = engine.transact(|txn| jobs::transition(txn, job.id, &[PENDING], State::InProgress, now_ms())).await;
        if !matches!(claimed, Ok((true, _))) {
            return; // canceled meanwhile
        }
        let end = match engine.call_job(job).await.value {
            Ok(_) => State::Success,
            Err(e) => State::Failed(e.message),
        };
        // A job canceled while it ran stays canceled.
        finish(engine, job, &[IN_PROGRESS], end).await;
    } else if let Err(e) = engine.call_job(job).await.value {
        // A mutation that succeeded moved itself to `success` as it committed;
        // one that failed (or was canceled) committed nothing.
        finish(engine, job, &[PENDING], State::Failed(e.message)).await;
    }
}

async fn finish(engine: &Engine, job: &Job, from: &[&str], to: State) {
    if let Err(e) = engine.transact(|txn| jobs::transition(txn, job.id, from, to.clone(), now_ms())).await {
        tracing::error!(job = %job.id.encode(), name = job.name, error = %e, "recording a scheduled function's end failed");
    }
}
