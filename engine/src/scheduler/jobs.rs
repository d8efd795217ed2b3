//! The `_scheduled_functions` system table, read and written inside
//! transactions: one document per scheduled call, as Convex shows it (`name`,
//! `args` as a one-element array, `scheduledTime` and `completedTime` in ms,
//! `state: {kind, error?}`). Its `by_state` index (`state.kind`,
//! `scheduledTime`) is how the executor finds due jobs in order.

use crate::catalog::Catalog;
use crate::storage::{CatalogWrite, KeyRange};
use crate::txn::{Transaction, TxnError};
use crate::types::{Document, Order};
use convect_schema::{encode_index_key, prefix_successor, DocumentId, Value};
use std::collections::BTreeMap;

pub const SCHEDULED: &str = "_scheduled_functions";
const BY_STATE: &str = "by_state";

pub const PENDING: &str = "pending";
pub const IN_PROGRESS: &str = "inProgress";

pub fn plan_system_tables(catalog: &mut Catalog) -> Vec<CatalogWrite> {
    catalog.plan_system_table(SCHEDULED, &[(BY_STATE, &["state.kind", "scheduledTime"])])
}

/// A due job, as the executor runs it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: DocumentId,
    /// The function's canonical path, `module.js:export`.
    pub name: String,
    /// The arguments object, convex-encoded JSON.
    pub args: serde_json::Value,
    pub scheduled_ms: f64,
}

/// Where a job ends up.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    InProgress,
    Success,
    Failed(String),
    Canceled,
}

impl State {
    fn to_value(&self) -> Value {
        let mut state = BTreeMap::new();
        let kind = match self {
            State::InProgress => IN_PROGRESS,
            State::Success => "success",
            State::Failed(error) => {
                state.insert("error".to_owned(), Value::String(error.clone()));
                "failed"
            }
            State::Canceled => "canceled",
        };
        state.insert("kind".to_owned(), Value::String(kind.to_owned()));
        Value::Object(state)
    }
}

/// Records a pending call of `name` with `args` (an object) at `scheduled_ms`.
pub fn insert(txn: &mut Transaction, name: &str, args: Value, scheduled_ms: f64) -> Result<DocumentId, TxnError> {
    let mut state = BTreeMap::new();
    state.insert("kind".to_owned(), Value::String(PENDING.to_owned()));
    let mut doc = BTreeMap::new();
    doc.insert("name".to_owned(), Value::String(name.to_owned()));
    doc.insert("args".to_owned(), Value::Array(vec![args]));
    doc.insert("scheduledTime".to_owned(), Value::Float64(scheduled_ms));
    doc.insert("state".to_owned(), Value::Object(state));
    txn.insert_system(SCHEDULED, doc)
}

/// The job document `id` names, which must be one of this table's.
pub fn get(txn: &mut Transaction, id: DocumentId) -> Result<Option<Document>, TxnError> {
    if txn.table_name_of(&id).as_deref() != Some(SCHEDULED) {
        return Err(TxnError::User(format!("Invalid argument `id`: \"{}\" is not an ID of a scheduled function", id.encode())));
    }
    txn.get(id)
}

pub fn kind(doc: &Document) -> Option<&str> {
    match convect_schema::get_field_path(&doc.value, "state.kind") {
        Some(Value::String(kind)) => Some(kind),
        _ => None,
    }
}

/// Moves job `id` to `to` if it is in one of the states `from`; whether it did.
/// Terminal states get a `completedTime`.
pub fn transition(txn: &mut Transaction, id: DocumentId, from: &[&str], to: State, now_ms: f64) -> Result<bool, TxnError> {
    let Some(doc) = get(txn, id)? else { return Ok(false) };
    if !kind(&doc).is_some_and(|k| from.contains(&k)) {
        return Ok(false);
    }
    let mut patch = BTreeMap::new();
    if to != State::InProgress {
        patch.insert("completedTime".to_owned(), Some(Value::Float64(now_ms)));
    }
    patch.insert("state".to_owned(), Some(to.to_value()));
    txn.patch(id, patch)?;
    Ok(true)
}

/// Cancels job `id` unless it already finished, as `ctx.scheduler.cancel` does.
pub fn cancel(txn: &mut Transaction, id: DocumentId, now_ms: f64) -> Result<(), TxnError> {
    if get(txn, id)?.is_none() {
        return Err(TxnError::User(format!("Scheduled function \"{}\" does not exist", id.encode())));
    }
    transition(txn, id, &[PENDING, IN_PROGRESS], State::Canceled, now_ms)?;
    Ok(())
}

/// Up to `limit` jobs in state `kind` scheduled no later than `until_ms`, earliest first.
pub fn in_state(txn: &mut Transaction, kind: &str, until_ms: f64, limit: usize) -> Result<Vec<Job>, TxnError> {
    let index = txn.index_named(SCHEDULED, BY_STATE)?;
    let start = encode_index_key(&[Some(&Value::String(kind.to_owned()))]);
    let end = prefix_successor(&encode_index_key(&[Some(&Value::String(kind.to_owned())), Some(&Value::Float64(until_ms))]));
    let (docs, _) = txn.scan(&index, &KeyRange { start, end }, Order::Asc, limit)?;
    Ok(docs.into_iter().filter_map(|(_, doc)| job_of(doc)).collect())
}

/// When the earliest pending job is due, if there is one.
pub fn next_due_ms(txn: &mut Transaction) -> Result<Option<f64>, TxnError> {
    Ok(in_state(txn, PENDING, f64::INFINITY, 1)?.first().map(|j| j.scheduled_ms))
}

fn job_of(doc: Document) -> Option<Job> {
    let name = match doc.value.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return None,
    };
    let args = match doc.value.get("args") {
        Some(Value::Array(a)) => a.first().map(Value::to_json).unwrap_or(serde_json::Value::Null),
        _ => serde_json::Value::Null,
    };
    let scheduled_ms = match doc.value.get("scheduledTime") {
        Some(Value::Float64(t)) => *t,
        _ => return None,
    };
    Some(Job { id: doc.id, name, args, scheduled_ms })
}
