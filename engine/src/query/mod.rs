//! Serialized queries (what `ctx.db.query(...)` builds in JavaScript) turned into
//! index scans: index ranges become key intervals, and operators (`filter`,
//! `limit`) apply to the stream of documents in order. Streams pull from storage in
//! batches sized to what the query can still return, so `take(10)` over a million
//! documents reads about ten.

mod filter;

pub use filter::{optional_value, Expr};

use crate::catalog::{IndexMeta, BY_CREATION_TIME, BY_ID};
use crate::storage::KeyRange;
use crate::txn::{Transaction, TxnError};
use crate::types::{Document, Order};
use base64::Engine as _;
use convect_schema::{encode_index_key, prefix_successor, Value};
use serde_json::Value as Json;
use std::collections::VecDeque;

const FIRST_BATCH: usize = 32;
const MAX_BATCH: usize = 1024;

fn bad<T>(msg: impl Into<String>) -> Result<T, TxnError> {
    Err(TxnError::User(msg.into()))
}

#[derive(Debug)]
enum Op {
    Filter(Expr),
    Limit { max: usize, seen: usize },
}

struct RangeExpr {
    kind: String,
    field: String,
    value: Option<Value>,
}

/// An open query: what remains of its index range and its operators' state.
pub struct QueryStream {
    index: IndexMeta,
    remaining: Option<KeyRange>,
    order: Order,
    ops: Vec<Op>,
    buffer: VecDeque<(Vec<u8>, Document)>,
    batch: usize,
    /// Key of the document most recently returned, for pagination cursors.
    pub last_key: Option<Vec<u8>>,
}

/// A staged index is declared but not yet enabled; Convex refuses to read it
/// (with this message) even before its table exists.
fn refuse_staged(txn: &Transaction, table: &str, index: &str) -> Result<(), TxnError> {
    if txn.is_staged_index(table, index) {
        return bad(format!("Index {table}.{index} is currently staged and not available to query until it is enabled"));
    }
    Ok(())
}

impl QueryStream {
    pub fn open(txn: &mut Transaction, query: &Json) -> Result<QueryStream, TxnError> {
        let source = &query["source"];
        let order = match source["order"].as_str() {
            Some("desc") => Order::Desc,
            _ => Order::Asc,
        };
        let (table, index_name, range) = match source["type"].as_str() {
            Some("FullTableScan") => (str_field(source, "tableName")?, BY_CREATION_TIME.to_owned(), Vec::new()),
            Some("IndexRange") => {
                let full = str_field(source, "indexName")?;
                let Some((table, index)) = full.split_once('.') else {
                    return bad(format!("invalid index name \"{full}\""));
                };
                (table.to_owned(), index.to_owned(), parse_range(&source["range"])?)
            }
            Some("Search") => {
                let full = str_field(source, "indexName")?;
                if let Some((table, index)) = full.split_once('.') {
                    refuse_staged(txn, table, index)?;
                }
                return bad("Full text search indexes are not supported by Convect yet.");
            }
            _ => return bad(format!("invalid query source: {source}")),
        };
        refuse_staged(txn, &table, &index_name)?;
        let ops = parse_ops(&query["operators"])?;
        let Some(number) = txn.catalog().table_number(&table) else {
            // A table that was never written to is empty; reading it is not an error,
            // and its first insert must invalidate what was read.
            txn.record_missing_table(&table);
            return Ok(QueryStream::empty(order, ops));
        };
        let Some(index) = txn.catalog().index(number, &index_name).cloned() else {
            return bad(format!("Index \"{table}.{index_name}\" not found."));
        };
        let key_range = key_range(&index, &range)?;
        Ok(QueryStream { index, remaining: Some(key_range), order, ops, buffer: VecDeque::new(), batch: FIRST_BATCH, last_key: None })
    }

    fn empty(order: Order, ops: Vec<Op>) -> QueryStream {
        let index = IndexMeta { id: -1, table_number: 0, name: String::new(), fields: Vec::new() };
        QueryStream { index, remaining: None, order, ops, buffer: VecDeque::new(), batch: 1, last_key: None }
    }

    /// Restricts the stream to keys after `cursor` (exclusive) and, if given, up to
    /// `end` (inclusive).
    pub fn restrict(&mut self, after: Option<&[u8]>, until: Option<&[u8]>) {
        let Some(range) = self.remaining.as_mut() else { return };
        let succ = |k: &[u8]| {
            let mut v = k.to_vec();
            v.push(0);
            v
        };
        match self.order {
            Order::Asc => {
                if let Some(a) = after {
                    range.start = range.start.clone().max(succ(a));
                }
                if let Some(u) = until {
                    range.end = Some(range.end.clone().map_or(succ(u), |e| e.min(succ(u))));
                }
            }
            Order::Desc => {
                if let Some(a) = after {
                    range.end = Some(range.end.clone().map_or(a.to_vec(), |e| e.min(a.to_vec())));
                }
                if let Some(u) = until {
                    range.start = range.start.clone().max(u.to_vec());
                }
            }
        }
    }

    fn limit_reached(&self) -> bool {
        self.ops.iter().any(|op| matches!(op, Op::Limit { max, seen } if seen >= max))
    }

    /// How many documents the next batch should fetch: exactly what a leading
    /// limit still allows, otherwise a growing batch.
    fn next_batch_size(&mut self) -> usize {
        if let Some(Op::Limit { max, seen }) = self.ops.first() {
            return (max - seen).clamp(1, MAX_BATCH);
        }
        let size = self.batch;
        self.batch = (self.batch * 2).min(MAX_BATCH);
        size
    }

    pub fn next(&mut self, txn: &mut Transaction) -> Result<Option<Document>, TxnError> {
        'items: loop {
            if self.limit_reached() {
                return Ok(None);
            }
            let Some((key, doc)) = self.buffer.pop_front() else {
                let Some(range) = self.remaining.take() else { return Ok(None) };
                let size = self.next_batch_size();
                let (docs, rest) = txn.scan(&self.index, &range, self.order, size)?;
                self.buffer.extend(docs);
                self.remaining = rest;
                continue;
            };
            for op in &mut self.ops {
                match op {
                    Op::Filter(expr) => {
                        if !expr.matches(&doc.value).map_err(TxnError::User)? {
                            continue 'items;
                        }
                    }
                    Op::Limit { seen, .. } => *seen += 1,
                }
            }
            self.last_key = Some(key);
            return Ok(Some(doc));
        }
    }

    /// Whether nothing more can come from the index range.
    pub fn exhausted(&self) -> bool {
        self.buffer.is_empty() && self.remaining.is_none()
    }
}

fn str_field(j: &Json, name: &str) -> Result<String, TxnError> {
    match j[name].as_str() {
        Some(s) => Ok(s.to_owned()),
        None => bad(format!("query is missing `{name}`")),
    }
}

fn parse_ops(j: &Json) -> Result<Vec<Op>, TxnError> {
    let Some(list) = j.as_array() else { return Ok(Vec::new()) };
    list.iter()
        .map(|op| {
            if let Some(f) = op.get("filter") {
                Ok(Op::Filter(Expr::parse(f).map_err(TxnError::User)?))
            } else if let Some(n) = op.get("limit").and_then(Json::as_f64) {
                Ok(Op::Limit { max: n.max(0.0) as usize, seen: 0 })
            } else {
                bad(format!("unknown query operator: {op}"))
            }
        })
        .collect()
}

fn parse_range(j: &Json) -> Result<Vec<RangeExpr>, TxnError> {
    let Some(list) = j.as_array() else { return Ok(Vec::new()) };
    list.iter()
        .map(|e| {
            Ok(RangeExpr {
                kind: str_field(e, "type")?,
                field: str_field(e, "fieldPath")?,
                value: optional_value(&e["value"]).map_err(TxnError::User)?,
            })
        })
        .collect()
}

/// Fields that `withIndex` ranges may name, in index order.
fn range_fields(index: &IndexMeta) -> &[String] {
    match index.name.as_str() {
        BY_ID => &index.fields,
        _ => &index.fields[..index.fields.len() - 1],
    }
}

/// Turns `eq* (gt|gte)? (lt|lte)?` over the index's fields into a key interval.
fn key_range(index: &IndexMeta, exprs: &[RangeExpr]) -> Result<KeyRange, TxnError> {
    let fields = range_fields(index);
    let mut eq: Vec<Option<&Value>> = Vec::new();
    let mut rest = exprs;
    while let Some((e, tail)) = rest.split_first() {
        if e.kind != "Eq" {
            break;
        }
        expect_field(index, fields, eq.len(), &e.field)?;
        eq.push(e.value.as_ref());
        rest = tail;
    }
    let prefix = encode_index_key(&eq);
    let bound_field = eq.len();
    let mut lower = prefix.clone();
    let mut upper = prefix_successor(&prefix);
    let (mut seen_lower, mut seen_upper) = (false, false);
    for e in rest {
        expect_field(index, fields, bound_field, &e.field)?;
        let mut with = prefix.clone();
        with.extend(encode_index_key(&[e.value.as_ref()]));
        match e.kind.as_str() {
            "Gt" | "Gte" if !seen_lower => {
                seen_lower = true;
                lower = if e.kind == "Gt" { prefix_successor(&with).unwrap_or(with) } else { with };
            }
            "Lt" | "Lte" if !seen_upper => {
                seen_upper = true;
                upper = if e.kind == "Lt" { Some(with) } else { prefix_successor(&with) };
            }
            _ => return bad(format!("Invalid index range for \"{}\": `{}` on \"{}\" is not allowed here. Ranges are zero or more `eq`s followed by at most one lower and one upper bound.", index.name, e.kind.to_lowercase(), e.field)),
        }
    }
    Ok(KeyRange { start: lower, end: upper })
}

fn expect_field(index: &IndexMeta, fields: &[String], position: usize, field: &str) -> Result<(), TxnError> {
    match fields.get(position) {
        Some(f) if f == field => Ok(()),
        expected => bad(format!(
            "Invalid index range for \"{}\": expected field {} but got \"{field}\". Index fields are {:?}.",
            index.name,
            expected.map(|f| format!("\"{f}\"")).unwrap_or_else(|| "none".into()),
            fields
        )),
    }
}

/// Opaque pagination cursors: the last key a page returned, or the end of the range.
pub fn encode_cursor(key: Option<&[u8]>) -> String {
    match key {
        Some(k) => format!("k{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(k)),
        None => "end".into(),
    }
}

pub enum Cursor {
    Start,
    After(Vec<u8>),
    End,
}

pub fn decode_cursor(s: Option<&str>) -> Result<Cursor, TxnError> {
    match s {
        None => Ok(Cursor::Start),
        Some("end") => Ok(Cursor::End),
        Some(s) => match s.strip_prefix('k').map(|b| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b)) {
            Some(Ok(k)) => Ok(Cursor::After(k)),
            _ => bad(format!("Invalid pagination cursor \"{s}\".")),
        },
    }
}
