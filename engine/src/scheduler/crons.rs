//! Cron jobs at run time: the `_cron_jobs` system table remembers each job of
//! the live deployment's `crons.ts` (`name`, `function`, `args`, `schedule`
//! as `Schedule::describe` text, `lastRun` and `nextRun` in ms). A job whose
//! `nextRun` has passed is started by scheduling its function through
//! `_scheduled_functions` and moving `nextRun` past the present in the same
//! transaction, so runs missed while the server was down collapse into one.

use super::cron::CronSpec;
use super::jobs;
use crate::catalog::Catalog;
use crate::deployment::Deployment;
use crate::storage::{CatalogWrite, KeyRange};
use crate::txn::{Transaction, TxnError};
use crate::types::{Document, Order};
use convect_schema::{encode_index_key, Value};
use std::collections::BTreeMap;

pub const CRONS: &str = "_cron_jobs";
const BY_NAME: &str = "by_name";
const BY_NEXT: &str = "by_next";
/// More cron jobs than any deployment declares; read in one batch.
const MAX_JOBS: usize = 10_000;

pub fn plan_system_tables(catalog: &mut Catalog) -> Vec<CatalogWrite> {
    catalog.plan_system_table(CRONS, &[(BY_NAME, &["name"]), (BY_NEXT, &["nextRun"])])
}

/// The fields that identify what a job does; a change to any is a new job.
fn definition(spec: &CronSpec, deployment: &Deployment) -> Result<BTreeMap<String, Value>, TxnError> {
    let args = Value::from_json(&spec.args).map_err(|e| TxnError::User(format!("cron job \"{}\": {e}", spec.identifier)))?;
    let function = super::canonical_name(deployment, &spec.name).unwrap_or_else(|| spec.name.clone());
    Ok(BTreeMap::from([
        ("name".to_owned(), Value::String(spec.identifier.clone())),
        ("function".to_owned(), Value::String(function)),
        ("args".to_owned(), args),
        ("schedule".to_owned(), Value::String(spec.schedule.describe())),
    ]))
}

/// Makes `_cron_jobs` match `deployment`'s jobs: a new or changed job is
/// due at its schedule's next time after `now_ms`; an unchanged one keeps its
/// runs; a removed one goes.
pub fn reconcile(txn: &mut Transaction, deployment: &Deployment, now_ms: i64) -> Result<(), TxnError> {
    let mut existing: BTreeMap<String, Document> = all(txn)?.into_iter().filter_map(|d| Some((name(&d)?.to_owned(), d))).collect();
    for spec in deployment.crons.iter() {
        let wanted = definition(spec, deployment)?;
        let kept = existing.remove(&spec.identifier);
        if kept.as_ref().is_some_and(|doc| wanted.iter().all(|(k, v)| doc.value.get(k) == Some(v))) {
            continue;
        }
        let mut fields = wanted;
        fields.insert("nextRun".to_owned(), Value::Float64(spec.schedule.next_after(now_ms) as f64));
        match kept {
            Some(doc) => txn.replace(doc.id, fields)?,
            None => {
                txn.insert_system(CRONS, fields)?;
            }
        }
    }
    for (_, doc) in existing {
        txn.delete(doc.id)?;
    }
    Ok(())
}

/// Schedules every job due by `now_ms` now, and moves its next run past
/// `now_ms`; returns how many started.
pub fn start_due(txn: &mut Transaction, deployment: &Deployment, now_ms: i64) -> Result<usize, TxnError> {
    let index = txn.index_named(CRONS, BY_NEXT)?;
    let end = encode_index_key(&[Some(&Value::Float64(now_ms as f64))]);
    let (due, _) = txn.scan(&index, &KeyRange { start: Vec::new(), end: Some(end) }, Order::Asc, MAX_JOBS)?;
    let mut started = 0;
    for (_, doc) in due {
        // A job the live deployment no longer has waits for `reconcile`.
        let Some(spec) = name(&doc).and_then(|n| deployment.crons.iter().find(|s| s.identifier == n)) else { continue };
        let Some(function) = super::canonical_name(deployment, &spec.name) else { continue };
        let args = Value::from_json(&spec.args).map_err(|e| TxnError::User(e.to_string()))?;
        jobs::insert(txn, &function, args, now_ms as f64)?;
        let mut fields = doc.value.clone();
        fields.retain(|k, _| !k.starts_with('_'));
        fields.insert("lastRun".to_owned(), Value::Float64(now_ms as f64));
        fields.insert("nextRun".to_owned(), Value::Float64(spec.schedule.next_after(now_ms) as f64));
        txn.replace(doc.id, fields)?;
        started += 1;
    }
    Ok(started)
}

/// When the next cron job is due, if any.
pub fn next_run_ms(txn: &mut Transaction) -> Result<Option<f64>, TxnError> {
    let index = txn.index_named(CRONS, BY_NEXT)?;
    let (first, _) = txn.scan(&index, &KeyRange::all(), Order::Asc, 1)?;
    Ok(first.first().and_then(|(_, doc)| match doc.value.get("nextRun") {
        Some(Value::Float64(t)) => Some(*t),
        _ => None,
    }))
}

/// Every cron job, by name.
pub fn all(txn: &mut Transaction) -> Result<Vec<Document>, TxnError> {
    let index = txn.index_named(CRONS, BY_NAME)?;
    Ok(txn.scan(&index, &KeyRange::all(), Order::Asc, MAX_JOBS)?.0.into_iter().map(|(_, doc)| doc).collect())
}

fn name(doc: &Document) -> Option<&str> {
    match doc.value.get("name") {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}
