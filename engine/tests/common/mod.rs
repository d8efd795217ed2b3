//! Shared engine-level harness for the integration tests: a SQLite store in a
//! temporary directory, the catalog, a running `Committer`, and helpers to run
//! transactions and queries from the test thread. Commits are driven through a
//! small current-thread tokio runtime (`block_on`), so `Transaction::insert` may
//! create tables with `exclusive_blocking` from the test thread itself.

#![allow(dead_code)]

use convect_engine::catalog::{Catalog, IndexMeta};
use convect_engine::committer::{CommitError, Committer};
use convect_engine::query::QueryStream;
use convect_engine::storage::{CatalogWrite, Persistence, SqliteStore};
use convect_engine::txn::{Transaction, TxnEnv};
use convect_engine::types::{Document, Timestamp};
use convect_schema::{DocumentId, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};

pub struct Harness {
    pub path: PathBuf,
    pub store: Arc<SqliteStore>,
    pub catalog: Arc<RwLock<Catalog>>,
    pub committer: Committer,
    pub loaded_max_ts: Timestamp,
    rt: tokio::runtime::Runtime,
}

impl Harness {
    /// Opens (or creates) the database at `path` the way `Engine::open` does.
    pub fn open(path: &Path) -> Harness {
        let store = Arc::new(SqliteStore::open(path).expect("open store"));
        let state = store.load().expect("load state");
        let catalog = Arc::new(RwLock::new(Catalog::from_persisted(&state)));
        let dyn_store: Arc<dyn Persistence> = store.clone();
        let committer = Committer::start(dyn_store, catalog.clone(), state.max_ts);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        Harness { path: path.to_owned(), store, catalog, committer, loaded_max_ts: state.max_ts, rt }
    }

    /// Drops everything and waits until the committer thread has released the store,
    /// so that nothing of this process's state survives but the file.
    pub fn close(self) {
        let weak: Weak<SqliteStore> = Arc::downgrade(&self.store);
        drop(self);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while weak.strong_count() > 0 {
            assert!(std::time::Instant::now() < deadline, "committer thread did not release the store");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    pub fn env(&self) -> TxnEnv {
        TxnEnv {
            store: self.store.clone(),
            catalog: self.catalog.clone(),
            committer: self.committer.clone(),
            schema: None,
            deployment_version: self.committer.deployment_version(),
        }
    }

    pub fn begin(&self) -> Transaction {
        Transaction::begin(self.env(), now_ms())
    }

    pub fn commit(&self, txn: Transaction) -> Result<Timestamp, CommitError> {
        self.rt.block_on(self.committer.commit(txn.prepare()))
    }

    pub fn latest(&self) -> Timestamp {
        self.committer.latest()
    }

    /// Creates `table` (if needed) and a user index on `fields`. Must run before the
    /// table holds documents: the harness does not backfill.
    pub fn create_index(&self, table: &str, name: &str, fields: &[&str]) -> IndexMeta {
        let number = self.begin().ensure_table(table).expect("ensure table");
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        let index_name = name.to_owned();
        self.committer
            .exclusive_blocking(Box::new(move |ctx| {
                let record = ctx.catalog.read().unwrap().plan_index(number, &index_name, &fields, 0);
                ctx.catalog_writes.push(CatalogWrite::CreateIndex(record));
                Ok(Json::Null)
            }))
            .expect("create index");
        self.index(table, name)
    }

    pub fn index(&self, table: &str, name: &str) -> IndexMeta {
        let catalog = self.catalog.read().unwrap();
        let number = catalog.table_number(table).expect("table exists");
        catalog.index(number, name).cloned().expect("index exists")
    }

    /// Inserts all of `docs` in one transaction and commits it.
    pub fn insert_all(&self, table: &str, docs: Vec<BTreeMap<String, Value>>) -> (Vec<DocumentId>, Timestamp) {
        let mut txn = self.begin();
        let ids = docs.into_iter().map(|d| txn.insert(table, d).expect("insert")).collect();
        let ts = self.commit(txn).expect("commit inserts");
        (ids, ts)
    }
}

pub fn now_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() * 1000.0
}

/// Runs a serialized query to completion inside `txn`.
pub fn run_query(txn: &mut Transaction, query: &Json) -> Vec<Document> {
    let mut stream = QueryStream::open(txn, query).expect("open query");
    let mut out = Vec::new();
    while let Some(doc) = stream.next(txn).expect("query next") {
        out.push(doc);
    }
    out
}

/// An `IndexRange` query over `table.index`.
pub fn index_query(index: &str, range: Json, order: &str, operators: Json) -> Json {
    serde_json::json!({
        "source": { "type": "IndexRange", "indexName": index, "range": range, "order": order },
        "operators": operators,
    })
}

pub fn obj(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub fn int(i: i64) -> Value {
    Value::Int64(i)
}

pub fn field<'a>(doc: &'a Document, name: &str) -> Option<&'a Value> {
    doc.value.get(name)
}

pub fn int_field(doc: &Document, name: &str) -> i64 {
    match doc.value.get(name) {
        Some(Value::Int64(i)) => *i,
        other => panic!("field {name} is not an int64: {other:?}"),
    }
}

/// The convex-encoded JSON of a value, for query ranges and filters.
pub fn enc(v: &Value) -> Json {
    v.to_json()
}
