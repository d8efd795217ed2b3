//! `Transaction`: one query or mutation's view of the database. Reads come from a
//! snapshot at a fixed timestamp overlaid with the transaction's own writes, and
//! every read is recorded in the `ReadSet`; writes go to the `WriteLog` and reach
//! storage only through the committer.

mod read_set;
mod write_log;

pub use read_set::ReadSet;
pub use write_log::{PendingWrite, WriteLog};

use crate::catalog::{table_name_key, Catalog, IndexMeta, BY_ID, TABLE_NAMES};
use crate::committer::{CommitError, Committer, PreparedCommit};
use crate::storage::{CatalogWrite, DocumentWrite, IndexWrite, KeyRange, Persistence, StorageError};
use crate::types::{Document, Order, Timestamp};
use convect_schema::{check_document, DatabaseSchema, DocumentId, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

/// Published per-transaction limits.
pub const MAX_WRITES: usize = 16_000;
pub const MAX_READS: usize = 32_000;

#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// A user-facing error: bad arguments, limits, schema violations.
    #[error("{0}")]
    User(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

pub type Result<T> = std::result::Result<T, TxnError>;

/// One scan batch: documents with their index keys, and the range left to scan.
pub type ScanBatch = (Vec<(Vec<u8>, Document)>, Option<KeyRange>);

fn user<T>(msg: impl Into<String>) -> Result<T> {
    Err(TxnError::User(msg.into()))
}

/// What a transaction needs from its surroundings.
#[derive(Clone)]
pub struct TxnEnv {
    pub store: Arc<dyn Persistence>,
    pub catalog: Arc<RwLock<Catalog>>,
    pub committer: Committer,
    pub schema: Option<Arc<DatabaseSchema>>,
    /// The deployment the transaction runs under; a deploy in between is a conflict.
    pub deployment_version: u64,
}

pub struct Transaction {
    env: TxnEnv,
    snapshot: Timestamp,
    deployment_version: u64,
    now_ms: f64,
    inserts: u32,
    docs_read: usize,
    pub reads: ReadSet,
    pub writes: WriteLog,
}

impl Transaction {
    pub fn begin(env: TxnEnv, now_ms: f64) -> Self {
        let snapshot = env.committer.latest();
        Self::begin_at(env, snapshot, now_ms)
    }

    /// A transaction reading at `snapshot`, which must not be newer than the
    /// committer's latest timestamp.
    pub fn begin_at(env: TxnEnv, snapshot: Timestamp, now_ms: f64) -> Self {
        let deployment_version = env.deployment_version;
        Transaction { env, snapshot, deployment_version, now_ms, inserts: 0, docs_read: 0, reads: ReadSet::default(), writes: WriteLog::default() }
    }

    pub fn snapshot(&self) -> Timestamp {
        self.snapshot
    }

    pub fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.env.catalog.read().expect("catalog poisoned")
    }

    /// Whether the deployment's schema declares `table.index` as staged (a
    /// database, search or vector index).
    pub fn is_staged_index(&self, table: &str, index: &str) -> bool {
        let Some(def) = self.env.schema.as_ref().and_then(|s| s.tables.get(table)) else { return false };
        def.staged_indexes.iter().any(|i| i.name == index)
            || def.staged_search_indexes.iter().any(|i| i.name == index)
            || def.staged_vector_indexes.iter().any(|i| i.name == index)
    }

    pub fn table_name_of(&self, id: &DocumentId) -> Option<String> {
        self.catalog().table_name(id.table_number).map(str::to_owned)
    }

    /// The index `table.name`; a system table's exist from the moment the engine opens.
    pub fn index_named(&self, table: &str, name: &str) -> Result<IndexMeta> {
        let catalog = self.catalog();
        let index = catalog.table_number(table).and_then(|n| catalog.index(n, name)).cloned();
        index.ok_or_else(|| TxnError::User(format!("index {table}.{name} is missing")))
    }

    fn by_id(&self, table_number: u32) -> Option<IndexMeta> {
        self.catalog().index(table_number, BY_ID).cloned()
    }

    fn count_read(&mut self, n: usize) -> Result<()> {
        self.docs_read += n;
        if self.docs_read > MAX_READS {
            return user(format!("Too many documents read in a single function execution (limit: {MAX_READS})."));
        }
        Ok(())
    }

    /// Records that `table` was read while it did not exist, i.e. as empty.
    pub fn record_missing_table(&mut self, table: &str) {
        self.reads.record_point(TABLE_NAMES, table_name_key(table));
    }

    /// Reads one document, recording the point read.
    pub fn get(&mut self, id: DocumentId) -> Result<Option<Document>> {
        let Some(by_id) = self.by_id(id.table_number) else {
            // No read to record: a table created later gets random ids, so no
            // document of it can ever have this one.
            return Ok(None);
        };
        self.reads.record_point(by_id.id, by_id_key(&id));
        if let Some(w) = self.writes.get(&id) {
            return Ok(w.new.clone());
        }
        self.count_read(1)?;
        Ok(self.env.store.get_document(id, self.snapshot)?)
    }

    /// One batch of an index scan over `range`, merged with this transaction's own
    /// writes. Returns documents in index order and the part of `range` not yet
    /// covered (None once the range is exhausted).
    pub fn scan(
        &mut self,
        index: &IndexMeta,
        range: &KeyRange,
        order: Order,
        batch: usize,
    ) -> Result<ScanBatch> {
        let hits = self.env.store.scan_index(index.id, range, order, self.snapshot, batch)?;
        let (covered, rest) = split_covered(range, order, hits.len() < batch, hits.last().map(|h| h.key.as_slice()));
        self.reads.record(index.id, covered.clone());
        let mut out = Vec::with_capacity(hits.len());
        for hit in hits {
            if self.writes.get(&hit.doc_id).is_some() {
                continue; // its current version, if any, is added below
            }
            if let Some(doc) = self.env.store.get_document(hit.doc_id, self.snapshot)? {
                out.push((hit.key, doc));
            }
        }
        self.count_read(out.len())?;
        for (id, w) in self.writes.iter() {
            if id.table_number != index.table_number {
                continue;
            }
            if let Some(doc) = &w.new {
                let key = index.key_of(doc);
                if covered.contains(&key) {
                    out.push((key, doc.clone()));
                }
            }
        }
        out.sort_by(|a, b| match order {
            Order::Asc => a.0.cmp(&b.0),
            Order::Desc => b.0.cmp(&a.0),
        });
        Ok((out, rest))
    }

    pub fn count(&mut self, table: &str) -> Result<u64> {
        let Some(number) = self.catalog().table_number(table) else {
            self.record_missing_table(table);
            return Ok(0);
        };
        let Some(by_id) = self.by_id(number) else { return Ok(0) };
        self.reads.record(by_id.id, KeyRange::all());
        let stored = self.env.store.count_index(by_id.id, self.snapshot)? as i64;
        let delta: i64 = self
            .writes
            .iter()
            .filter(|(id, _)| id.table_number == number)
            .map(|(_, w)| w.new.is_some() as i64 - w.old.is_some() as i64)
            .sum();
        Ok((stored + delta).max(0) as u64)
    }

    pub fn insert(&mut self, table: &str, value: BTreeMap<String, Value>) -> Result<DocumentId> {
        if table.starts_with('_') {
            return user("System tables (prefixed with `_`) are read-only.");
        }
        check_document(&value).map_err(|e| TxnError::User(e.to_string()))?;
        let table_number = self.ensure_table(table)?;
        let doc = self.new_document(table_number, value);
        let id = doc.id;
        self.validate_schema(table, &doc)?;
        self.put(id, None, Some(doc))?;
        Ok(id)
    }

    /// Inserts into a system table (which exists from the moment the engine
    /// opens). Its documents are the engine's own: neither the user-document
    /// rules nor the schema apply, and they may carry `_`-prefixed internal fields.
    pub fn insert_system(&mut self, table: &str, value: BTreeMap<String, Value>) -> Result<DocumentId> {
        let Some(table_number) = self.catalog().table_number(table) else { return user(format!("system table {table} is missing")) };
        let doc = self.new_document(table_number, value);
        let id = doc.id;
        self.put(id, None, Some(doc))?;
        Ok(id)
    }

    /// `value` with a fresh `_id` in the table and its `_creationTime`.
    fn new_document(&mut self, table_number: u32, mut value: BTreeMap<String, Value>) -> Document {
        let id = DocumentId { table_number, internal_id: rand::random() };
        value.insert("_id".into(), Value::String(id.encode()));
        // Distinct, increasing creation times for inserts within one transaction.
        let creation = self.now_ms + f64::from(self.inserts) * 1e-3;
        self.inserts += 1;
        value.insert("_creationTime".into(), Value::Float64(creation));
        Document { id, value }
    }

    /// Replaces the user fields of a document, keeping its system fields.
    pub fn replace(&mut self, id: DocumentId, value: BTreeMap<String, Value>) -> Result<()> {
        check_document(&value).map_err(|e| TxnError::User(e.to_string()))?;
        let old = self.existing(id, "replace")?;
        let mut new = value;
        for system in ["_id", "_creationTime"] {
            if let Some(v) = old.value.get(system) {
                new.insert(system.into(), v.clone());
            }
        }
        self.write_existing(id, old, new)
    }

    /// Shallow-merges `patch` into a document; `None` values remove fields.
    pub fn patch(&mut self, id: DocumentId, patch: BTreeMap<String, Option<Value>>) -> Result<()> {
        let old = self.existing(id, "patch")?;
        let mut new = old.value.clone();
        for (k, v) in patch {
            if k == "_id" || k == "_creationTime" {
                if v.as_ref() != old.value.get(&k) {
                    return user(format!("Provided `{k}` field cannot be changed by patch"));
                }
                continue;
            }
            match v {
                Some(v) => new.insert(k, v),
                None => new.remove(&k),
            };
        }
        let user_fields: BTreeMap<_, _> = new.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect();
        check_document(&user_fields).map_err(|e| TxnError::User(e.to_string()))?;
        self.write_existing(id, old, new)
    }

    pub fn delete(&mut self, id: DocumentId) -> Result<()> {
        let old = self.existing(id, "delete")?;
        self.put(id, Some(old), None)
    }

    fn existing(&mut self, id: DocumentId, op: &str) -> Result<Document> {
        match self.get(id)? {
            Some(doc) => Ok(doc),
            None => user(format!("Could not {op} document with ID \"{}\": it does not exist", id.encode())),
        }
    }

    fn write_existing(&mut self, id: DocumentId, old: Document, new: BTreeMap<String, Value>) -> Result<()> {
        let doc = Document { id, value: new };
        let table = self.table_name_of(&id).unwrap_or_default();
        self.validate_schema(&table, &doc)?;
        self.put(id, Some(old), Some(doc))
    }

    fn put(&mut self, id: DocumentId, old: Option<Document>, new: Option<Document>) -> Result<()> {
        self.writes.put(id, old, new);
        if self.writes.len() > MAX_WRITES {
            return user(format!("Too many documents written in a single transaction (limit: {MAX_WRITES})."));
        }
        Ok(())
    }

    fn validate_schema(&self, table: &str, doc: &Document) -> Result<()> {
        // No schema declares system tables; only the engine writes them.
        if table.starts_with('_') {
            return Ok(());
        }
        let Some(schema) = &self.env.schema else { return Ok(()) };
        if !schema.schema_validation {
            return Ok(());
        }
        let Some(def) = schema.tables.get(table) else {
            return user(format!("Failed to insert or update a document in table \"{table}\" because it is not declared in the schema."));
        };
        let Some(validator) = &def.document_type else { return Ok(()) };
        let user_doc: BTreeMap<_, _> =
            doc.value.iter().filter(|(k, _)| *k != "_id" && *k != "_creationTime").map(|(k, v)| (k.clone(), v.clone())).collect();
        let catalog = self.catalog();
        validator.check(&Value::Object(user_doc), &*catalog).map_err(|e| {
            TxnError::User(format!(
                "Failed to insert or update a document in table \"{table}\" because it does not match the schema: {e}"
            ))
        })
    }

    /// The table's number, creating the table (and its implicit indexes) if needed.
    pub fn ensure_table(&self, table: &str) -> Result<u32> {
        if let Some(n) = self.catalog().table_number(table) {
            return Ok(n);
        }
        let name = table.to_owned();
        let out = self.env.committer.exclusive_blocking(Box::new(move |ctx| {
            let existing = ctx.catalog.read().expect("catalog poisoned").table_number(&name);
            let number = match existing {
                Some(n) => n,
                None => {
                    let (t, indexes) = ctx.catalog.read().expect("catalog poisoned").plan_table(&name);
                    ctx.catalog_writes.push(CatalogWrite::CreateTable(t.clone()));
                    ctx.catalog_writes.extend(indexes.into_iter().map(CatalogWrite::CreateIndex));
                    t.number
                }
            };
            Ok(serde_json::json!(number))
        }))?;
        Ok(out.as_u64().unwrap_or_default() as u32)
    }

    /// Turns the write log into index entries and conflict keys for the committer.
    pub fn prepare(self) -> PreparedCommit {
        let catalog = self.env.catalog.read().expect("catalog poisoned");
        let mut commit = PreparedCommit { snapshot: self.snapshot, deployment_version: self.deployment_version, ..Default::default() };
        let mut inserted_into = BTreeSet::new();
        for (id, w) in self.writes.iter() {
            if w.old.is_none() && w.new.is_none() {
                continue; // inserted and deleted by this transaction
            }
            if w.old.is_none() {
                inserted_into.insert(id.table_number);
            }
            for index in catalog.indexes(id.table_number) {
                let old = w.old.as_ref().map(|d| index.key_of(d));
                let new = w.new.as_ref().map(|d| index.key_of(d));
                let keys: BTreeSet<_> = old.iter().chain(new.iter()).cloned().collect();
                commit.written_keys.extend(keys.into_iter().map(|k| (index.id, k)));
                if old != new {
                    if let Some(k) = old {
                        commit.index_entries.push(IndexWrite { index_id: index.id, key: k, doc_id: None });
                    }
                    if let Some(k) = new {
                        commit.index_entries.push(IndexWrite { index_id: index.id, key: k, doc_id: Some(*id) });
                    }
                }
            }
            commit.documents.push(DocumentWrite { id: *id, value: w.new.clone() });
        }
        let tables = inserted_into.into_iter().filter_map(|n| catalog.table_name(n));
        commit.written_keys.extend(tables.map(|t| (TABLE_NAMES, table_name_key(t))));
        drop(catalog);
        commit.reads = self.reads;
        commit
    }
}

pub fn by_id_key(id: &DocumentId) -> Vec<u8> {
    convect_schema::encode_index_key(&[Some(&Value::String(id.encode()))])
}

/// Splits `range` into the part a scan batch covered and the part left, given
/// whether the batch exhausted the range and the last key it returned.
fn split_covered(range: &KeyRange, order: Order, exhausted: bool, last: Option<&[u8]>) -> (KeyRange, Option<KeyRange>) {
    match (exhausted, last) {
        (true, _) | (false, None) => (range.clone(), None),
        (false, Some(last)) => {
            let mut after = last.to_vec();
            after.push(0);
            match order {
                Order::Asc => (
                    KeyRange { start: range.start.clone(), end: Some(after.clone()) },
                    Some(KeyRange { start: after, end: range.end.clone() }),
                ),
                Order::Desc => (
                    KeyRange { start: last.to_vec(), end: range.end.clone() },
                    Some(KeyRange { start: range.start.clone(), end: Some(last.to_vec()) }),
                ),
            }
        }
    }
}
