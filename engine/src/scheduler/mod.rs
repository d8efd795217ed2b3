//! Scheduled functions (`ctx.scheduler`) and, on top of them, cron jobs.
//! This module owns the `_scheduled_functions` system table (`jobs.rs`), the
//! executor that runs due jobs (`executor.rs`), the parsing of `crons.ts`'s
//! schedules (`cron.rs`) and the `_cron_jobs` table that runs them (`crons.rs`). The syscalls that schedule and cancel live with the other
//! syscalls in `udf/`, and call in here.
//!
//! Guarantees: a job exists only if the transaction that scheduled it
//! commits; a scheduled mutation's writes and its move to `success` commit
//! together, so it runs exactly once; an action is marked `inProgress` before
//! it starts, so one interrupted by a crash is marked `failed` at the next
//! start and never run twice.

pub mod cron;
pub mod crons;
mod executor;
pub mod jobs;

pub use executor::start_scheduler;

use crate::deployment::Deployment;
use crate::runtime::UdfKind;
use convect_schema::Value;
use serde_json::Value as Json;
use std::time::Duration;

/// What an action interrupted by a restart fails with.
pub const INTERRUPTED: &str =
    "Transient error while executing action. Scheduled actions run at most once and this one will not be retried.";

/// Convex's limits on what one mutation or action may schedule: functions,
/// and bytes of their arguments.
pub const MAX_SCHEDULED_PER_CALL: usize = 1000;
pub const MAX_SCHEDULED_ARGS_BYTES: usize = 8 << 20;

/// What one execution has scheduled so far, against Convex's limits.
#[derive(Debug, Default)]
pub struct ScheduleBudget {
    functions: usize,
    bytes: usize,
}

impl ScheduleBudget {
    /// Counts `request`, or refuses it if it would go over a limit.
    pub fn spend(&mut self, request: &ScheduleRequest) -> Result<(), String> {
        let bytes = self.bytes + convect_schema::value_size(&request.args);
        if self.functions + 1 > MAX_SCHEDULED_PER_CALL {
            return Err(format!("Too many functions scheduled by this function (limit: {MAX_SCHEDULED_PER_CALL})"));
        }
        if bytes > MAX_SCHEDULED_ARGS_BYTES {
            return Err(format!("Too many bytes of arguments to functions scheduled by this function (limit: {MAX_SCHEDULED_ARGS_BYTES})"));
        }
        self.functions += 1;
        self.bytes = bytes;
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Jobs running at once at most; the rest wait their turn, in order.
    pub concurrency: usize,
    /// How long finished jobs stay in `_scheduled_functions`.
    pub retention: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions { concurrency: 10, retention: Duration::from_secs(7 * 24 * 3600) }
    }
}

/// A call to schedule, as `1.0/schedule` and `1.0/actions/schedule` describe it.
#[derive(Debug)]
pub struct ScheduleRequest {
    /// The function's canonical path (`module.js:export`).
    pub name: String,
    pub args: Value,
    pub scheduled_ms: f64,
}

/// Checks a schedule syscall's arguments against the deployment: the
/// function must be a mutation or an action, the time a finite number of
/// seconds, the arguments an object.
pub fn schedule_request(deployment: &Deployment, args: &Json) -> Result<ScheduleRequest, String> {
    let Some(path) = args["name"].as_str() else {
        return Err("Scheduling by function handle or component reference is not supported by Convect yet".into());
    };
    let Some(name) = canonical_name(deployment, path) else {
        return Err(format!("Attempted to schedule function at nonexistent path or a query: {path}; only mutations and actions can be scheduled"));
    };
    let Some(ts) = args["ts"].as_f64().filter(|t| t.is_finite()) else {
        return Err("The scheduled time must be a finite number".into());
    };
    let value = Value::from_json(&args["args"]).map_err(|e| format!("Invalid arguments for {path}: {e}"))?;
    if !matches!(value, Value::Object(_)) {
        return Err(format!("Invalid arguments for {path}: expected an object"));
    }
    Ok(ScheduleRequest { name, args: value, scheduled_ms: ts * 1000.0 })
}

/// The canonical path (`module.js:export`) of the mutation or action `path`
/// names in `deployment`, as `_scheduled_functions` records it.
pub fn canonical_name(deployment: &Deployment, path: &str) -> Option<String> {
    let f = deployment.function(path).filter(|f| f.kind != UdfKind::Query)?;
    Some(format!("{}:{}", f.module, f.export))
}

/// For the admin: what is scheduled, and the cron jobs.
impl crate::engine::Engine {
    /// The `limit` most recently created scheduled functions, oldest first.
    pub fn scheduled_jobs(&self, limit: usize) -> Result<Vec<Json>, crate::txn::TxnError> {
        let mut txn = self.begin_system();
        let index = txn.index_named(jobs::SCHEDULED, crate::catalog::BY_CREATION_TIME)?;
        let (docs, _) = txn.scan(&index, &crate::storage::KeyRange::all(), crate::types::Order::Desc, limit)?;
        Ok(docs.iter().rev().map(|(_, doc)| doc.visible_value().to_json()).collect())
    }

    /// Every cron job of the live deployment with its last and next run.
    pub fn cron_jobs(&self) -> Result<Vec<Json>, crate::txn::TxnError> {
        Ok(crons::all(&mut self.begin_system())?.iter().map(|doc| doc.visible_value().to_json()).collect())
    }
}
