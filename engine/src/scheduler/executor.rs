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
use crate::system_txn::now_ms;
use crate::types::IndexId;
use convect_schema::DocumentId;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, Semaphore};

/// Longest sleep without a reason to wake: a safety net, not a schedule.
const IDLE_WAKE: Duration = Duration::from_secs(60);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Jobs changed per transaction by recovery and pruning.
const BATCH: usize = 500;

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
        loop {
            // Only this task writes `_cron_jobs`, so its next run stays known
            // until it passes or a deployment changes the jobs.
            if crons_of != Some(self.engine.deployment().version) || next_cron.is_some_and(|t| t <= now_ms()) {
                next_cron = self.run_crons(&mut crons_of).await;
            }
            let next_due = match self.start_due() {
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
                    Ok(summary) if summary.everything || summary.written_keys.iter().any(|(i, _)| *i == by_state) => {
                        // Announced before readable: wait, or the job is not seen yet.
                        self.engine.committer().wait_for(summary.ts).await;
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                },
            }
        }
    }

    /// Starts due jobs while permits last; returns when the next job not yet
    /// started is due.
    fn start_due(&self) -> Result<Option<f64>, crate::txn::TxnError> {
        let running = self.running.lock().expect("running poisoned").len();
        let mut txn = self.engine.begin_system();
        let free = self.permits.available_permits();
        let now = now_ms();
        // Running mutation jobs are still pending; read past them.
        let candidates = jobs::in_state(&mut txn, PENDING, f64::INFINITY, free + running + 1)?;
        let mut next_due = None;
        for job in candidates {
            if self.running.lock().expect("running poisoned").contains(&job.id) {
                continue;
            }
            if job.scheduled_ms > now {
                next_due = Some(job.scheduled_ms);
                break;
            }
            let Ok(permit) = self.permits.clone().try_acquire_owned() else {
                next_due = Some(job.scheduled_ms);
                break;
            };
            self.running.lock().expect("running poisoned").insert(job.id);
            let (engine, running, finished) = (self.engine.clone(), self.running.clone(), self.finished.clone());
            tokio::spawn(async move {
                run_job(&engine, &job).await;
                running.lock().expect("running poisoned").remove(&job.id);
                drop(permit);
                finished.notify_one();
            });
        }
        Ok(next_due)
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
