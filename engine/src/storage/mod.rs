//! Persistence: the only part of the engine that talks to a database. It stores a
//! multi-version document log and versioned index entries, and it knows nothing of
//! transactions or JavaScript. `Persistence` is deliberately narrow so that a
//! Postgres implementation can sit beside the SQLite one.

mod sqlite;

pub use sqlite::SqliteStore;

use crate::types::{Document, IndexId, Order, Timestamp};
use convect_schema::DocumentId;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// A half-open byte interval `[start, end)` over index keys; `end: None` is unbounded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    pub fn all() -> Self {
        KeyRange { start: Vec::new(), end: None }
    }
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|e| key < e)
    }
    pub fn is_empty(&self) -> bool {
        self.end.as_deref().is_some_and(|e| e <= self.start.as_slice())
    }
}

/// One live index entry seen by a scan.
#[derive(Debug, Clone)]
pub struct IndexHit {
    pub key: Vec<u8>,
    pub doc_id: DocumentId,
}

/// A table and the indexes it has, as persisted.
#[derive(Debug, Clone)]
pub struct TableRecord {
    pub number: u32,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct IndexRecord {
    pub id: IndexId,
    pub table_number: u32,
    pub name: String,
    pub fields: Vec<String>,
}

/// One document version written by a commit; `value: None` deletes it.
#[derive(Debug, Clone)]
pub struct DocumentWrite {
    pub id: DocumentId,
    pub value: Option<Document>,
}

/// One index entry version written by a commit; `doc_id: None` removes the key.
#[derive(Debug, Clone)]
pub struct IndexWrite {
    pub index_id: IndexId,
    pub key: Vec<u8>,
    pub doc_id: Option<DocumentId>,
}

/// Everything one transaction writes, applied atomically at `ts`.
#[derive(Debug, Clone, Default)]
pub struct CommitRecord {
    pub ts: Timestamp,
    pub documents: Vec<DocumentWrite>,
    pub index_entries: Vec<IndexWrite>,
}

/// The deployment and configuration rows that outlive a process.
#[derive(Debug, Clone, Default)]
pub struct PersistedState {
    pub max_ts: Timestamp,
    pub tables: Vec<TableRecord>,
    pub indexes: Vec<IndexRecord>,
    pub deployment: Option<String>,
    pub env: Vec<(String, String)>,
}

/// A catalog or configuration change, applied by the committer in the same SQLite
/// transaction as document commits.
#[derive(Debug, Clone)]
pub enum CatalogWrite {
    CreateTable(TableRecord),
    CreateIndex(IndexRecord),
    DropIndex(IndexId),
    SetDeployment(String),
    /// A module's source by its hash, and its source map if it came with one.
    PutModule { hash: String, source: String, source_map: Option<String> },
    SetEnv { name: String, value: Option<String> },
}

pub trait Persistence: Send + Sync + 'static {
    fn load(&self) -> Result<PersistedState>;
    fn get_document(&self, id: DocumentId, ts: Timestamp) -> Result<Option<Document>>;
    /// Live entries of `index` within `range` as of `ts`, in `order`, at most `limit`.
    fn scan_index(
        &self,
        index: IndexId,
        range: &KeyRange,
        order: Order,
        ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<IndexHit>>;
    fn count_index(&self, index: IndexId, ts: Timestamp) -> Result<u64>;
    fn module_source(&self, hash: &str) -> Result<Option<String>>;
    /// The source map uploaded with the module of this hash, if any.
    fn module_source_map(&self, hash: &str) -> Result<Option<String>>;
    /// Applies catalog writes and commits in one durable transaction.
    fn write(&self, catalog: &[CatalogWrite], commits: &[CommitRecord]) -> Result<()>;
}
