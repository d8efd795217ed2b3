//! SQLite persistence (WAL, `synchronous=FULL`). Documents and index entries are
//! append-only version logs keyed by commit timestamp, so a read at `ts` needs no
//! locks: it picks, per key, the newest version at or below `ts`.

use super::*;
use crate::types::{id_from_bytes, id_to_bytes};
use convect_schema::Value;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, StatementStatus};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS documents (
  id BLOB NOT NULL, ts INTEGER NOT NULL, value TEXT,
  PRIMARY KEY (id, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS index_entries (
  index_id INTEGER NOT NULL, key BLOB NOT NULL, ts INTEGER NOT NULL, doc_id BLOB,
  PRIMARY KEY (index_id, key, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tables (number INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS indexes (
  id INTEGER PRIMARY KEY, table_number INTEGER NOT NULL, name TEXT NOT NULL, fields TEXT NOT NULL,
  UNIQUE (table_number, name));
CREATE TABLE IF NOT EXISTS modules (hash TEXT PRIMARY KEY, source TEXT NOT NULL);
-- Beside `modules` rather than a column of it, so databases made before source
-- maps need no migration; a module deployed then simply has no map.
CREATE TABLE IF NOT EXISTS module_source_maps (hash TEXT PRIMARY KEY, map TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS env_vars (name TEXT PRIMARY KEY, value TEXT NOT NULL);
";

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// Index rows (live or old versions) read by scans since open; for tests and metrics.
    index_rows_read: AtomicU64,
    /// SQLite VM steps spent in index scans: unlike rows returned, this also counts
    /// rows SQLite visited and discarded, so it exposes scans that use no bounds.
    index_scan_steps: AtomicU64,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<Self> {
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(None, "synchronous", "FULL")?;
        writer.busy_timeout(std::time::Duration::from_secs(30))?;
        writer.execute_batch(SCHEMA)?;
        Ok(SqliteStore { path: path.to_owned(), writer: Mutex::new(writer), readers: Mutex::new(Vec::new()), index_rows_read: AtomicU64::new(0), index_scan_steps: AtomicU64::new(0) })
    }

    /// How many index rows (all versions) scans have read from SQLite since open.
    pub fn index_rows_read(&self) -> u64 {
        self.index_rows_read.load(AtomicOrdering::Relaxed)
    }

    /// SQLite virtual-machine steps index scans have taken since open (a work measure).
    pub fn index_scan_steps(&self) -> u64 {
        self.index_scan_steps.load(AtomicOrdering::Relaxed)
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.lock().expect("reader pool poisoned").pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
                c.busy_timeout(std::time::Duration::from_secs(30))?;
                c
            }
        };
        let out = f(&conn);
        self.readers.lock().expect("reader pool poisoned").push(conn);
        out
    }
}

fn decode_doc(id: DocumentId, text: &str) -> Result<Document> {
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| StorageError::Corrupt(format!("document json: {e}")))?;
    match Value::from_json(&json) {
        Ok(Value::Object(value)) => Ok(Document { id, value }),
        Ok(_) => Err(StorageError::Corrupt("document is not an object".into())),
        Err(e) => Err(StorageError::Corrupt(format!("document value: {e}"))),
    }
}

fn encode_doc(doc: &Document) -> String {
    Value::Object(doc.value.clone()).to_json().to_string()
}

/// Raw index versions: key and doc id (None where the key was removed).
type RawEntries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// One page of raw index versions, newest first within a key, and the SQLite VM
/// steps it took.
fn scan_page(
    conn: &Connection,
    index: IndexId,
    range: &KeyRange,
    order: Order,
    ts: Timestamp,
    page: usize,
) -> Result<(RawEntries, u64)> {
    // The end bound must be a plain `key < ?` for SQLite to use it as a bound of the
    // index search (`?3 IS NULL OR key < ?3` is only a filter: a descending scan would
    // start at the last entry of the index and an ascending one would not stop).
    let sql = match (order, range.end.is_some()) {
        (Order::Asc, true) => "SELECT key, doc_id FROM index_entries WHERE index_id = ?1 AND key >= ?2 \
                               AND key < ?3 AND ts <= ?4 ORDER BY key ASC, ts DESC LIMIT ?5",
        (Order::Asc, false) => "SELECT key, doc_id FROM index_entries WHERE index_id = ?1 AND key >= ?2 \
                                AND ?3 IS NULL AND ts <= ?4 ORDER BY key ASC, ts DESC LIMIT ?5",
        (Order::Desc, true) => "SELECT key, doc_id FROM index_entries WHERE index_id = ?1 AND key >= ?2 \
                                AND key < ?3 AND ts <= ?4 ORDER BY key DESC, ts DESC LIMIT ?5",
        (Order::Desc, false) => "SELECT key, doc_id FROM index_entries WHERE index_id = ?1 AND key >= ?2 \
                                 AND ?3 IS NULL AND ts <= ?4 ORDER BY key DESC, ts DESC LIMIT ?5",
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![index, range.start, range.end, ts as i64, page as i64], |r| {
        Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Option<Vec<u8>>>(1)?))
    })?;
    let rows = rows.collect::<std::result::Result<_, _>>()?;
    let steps = stmt.reset_status(StatementStatus::VmStep).max(0) as u64;
    Ok((rows, steps))
}

/// Narrows `range` past `last_key`, the last key a page fully consumed.
fn advance(range: &KeyRange, order: Order, last_key: &[u8]) -> KeyRange {
    match order {
        Order::Asc => {
            let mut start = last_key.to_vec();
            start.push(0);
            KeyRange { start, end: range.end.clone() }
        }
        Order::Desc => KeyRange { start: range.start.clone(), end: Some(last_key.to_vec()) },
    }
}

impl Persistence for SqliteStore {
    fn load(&self) -> Result<PersistedState> {
        let conn = self.writer.lock().expect("writer poisoned");
        let max_ts: Option<i64> = conn.query_row(
            "SELECT MAX(ts) FROM (SELECT MAX(ts) AS ts FROM documents UNION ALL SELECT CAST(value AS INTEGER) FROM config WHERE key = 'max_ts')",
            [],
            |r| r.get(0),
        )?;
        let tables = conn
            .prepare("SELECT number, name FROM tables ORDER BY number")?
            .query_map([], |r| Ok(TableRecord { number: r.get(0)?, name: r.get(1)? }))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut indexes = Vec::new();
        let mut stmt = conn.prepare("SELECT id, table_number, name, fields FROM indexes ORDER BY id")?;
        for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)))? {
            let (id, table_number, name, fields) = row?;
            let fields = serde_json::from_str(&fields).map_err(|e| StorageError::Corrupt(format!("index fields: {e}")))?;
            indexes.push(IndexRecord { id, table_number, name, fields });
        }
        let deployment = conn
            .query_row("SELECT value FROM config WHERE key = 'deployment'", [], |r| r.get(0))
            .optional()?;
        let env = conn
            .prepare("SELECT name, value FROM env_vars ORDER BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(PersistedState { max_ts: max_ts.unwrap_or(0) as u64, tables, indexes, deployment, env })
    }

    fn get_document(&self, id: DocumentId, ts: Timestamp) -> Result<Option<Document>> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT value FROM documents WHERE id = ?1 AND ts <= ?2 ORDER BY ts DESC LIMIT 1",
            )?;
            let text: Option<Option<String>> =
                stmt.query_row(params![&id_to_bytes(&id)[..], ts as i64], |r| r.get(0)).optional()?;
            text.flatten().map(|t| decode_doc(id, &t)).transpose()
        })
    }

    fn scan_index(
        &self,
        index: IndexId,
        range: &KeyRange,
        order: Order,
        ts: Timestamp,
        limit: usize,
    ) -> Result<Vec<IndexHit>> {
        self.with_reader(|conn| {
            let mut hits = Vec::new();
            let mut range = range.clone();
            // Old versions share a page with live ones, so read a little more than asked.
            let page = limit.saturating_mul(2).clamp(8, 1024);
            while hits.len() < limit && !range.is_empty() {
                let (rows, steps) = scan_page(conn, index, &range, order, ts, page)?;
                self.index_scan_steps.fetch_add(steps, AtomicOrdering::Relaxed);
                self.index_rows_read.fetch_add(rows.len() as u64, AtomicOrdering::Relaxed);
                let exhausted = rows.len() < page;
                let mut prev: Option<&[u8]> = None;
                for (key, doc_id) in &rows {
                    if prev == Some(key.as_slice()) {
                        continue; // an older version of a key already decided
                    }
                    prev = Some(key);
                    if hits.len() == limit {
                        break;
                    }
                    if let Some(raw) = doc_id {
                        let doc_id = id_from_bytes(raw)
                            .ok_or_else(|| StorageError::Corrupt("index entry doc id".into()))?;
                        hits.push(IndexHit { key: key.clone(), doc_id });
                    }
                }
                // Rows come newest-first within a key, so every key in a full page was
                // decided; its last key's older versions are skipped by resuming after it.
                match rows.last() {
                    Some((last, _)) if !exhausted => range = advance(&range, order, last),
                    _ => break,
                }
            }
            Ok(hits)
        })
    }

    fn count_index(&self, index: IndexId, ts: Timestamp) -> Result<u64> {
        self.with_reader(|conn| {
            let n: i64 = conn.query_row(
                "SELECT COUNT(*) FROM index_entries e WHERE index_id = ?1 AND ts <= ?2 AND doc_id IS NOT NULL \
                 AND ts = (SELECT MAX(ts) FROM index_entries WHERE index_id = ?1 AND key = e.key AND ts <= ?2)",
                params![index, ts as i64],
                |r| r.get(0),
            )?;
            Ok(n as u64)
        })
    }

    fn module_source(&self, hash: &str) -> Result<Option<String>> {
        self.with_reader(|conn| {
            Ok(conn.query_row("SELECT source FROM modules WHERE hash = ?1", [hash], |r| r.get(0)).optional()?)
        })
    }

    fn module_source_map(&self, hash: &str) -> Result<Option<String>> {
        self.with_reader(|conn| {
            Ok(conn.query_row("SELECT map FROM module_source_maps WHERE hash = ?1", [hash], |r| r.get(0)).optional()?)
        })
    }

    fn write(&self, catalog: &[CatalogWrite], commits: &[CommitRecord]) -> Result<()> {
        let mut conn = self.writer.lock().expect("writer poisoned");
        let tx = conn.transaction()?;
        for write in catalog {
            apply_catalog(&tx, write)?;
        }
        for commit in commits {
            apply_commit(&tx, commit)?;
        }
        if let Some(last) = commits.last() {
            tx.execute(
                "INSERT INTO config (key, value) VALUES ('max_ts', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [last.ts.to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn apply_catalog(tx: &rusqlite::Transaction, write: &CatalogWrite) -> Result<()> {
    match write {
        CatalogWrite::CreateTable(t) => {
            tx.execute("INSERT OR IGNORE INTO tables (number, name) VALUES (?1, ?2)", params![t.number, t.name])?;
        }
        CatalogWrite::CreateIndex(i) => {
            let fields = serde_json::to_string(&i.fields).expect("fields serialize");
            tx.execute(
                "INSERT INTO indexes (id, table_number, name, fields) VALUES (?1, ?2, ?3, ?4)",
                params![i.id, i.table_number, i.name, fields],
            )?;
        }
        CatalogWrite::DropIndex(id) => {
            tx.execute("DELETE FROM indexes WHERE id = ?1", [id])?;
            tx.execute("DELETE FROM index_entries WHERE index_id = ?1", [id])?;
        }
        CatalogWrite::SetDeployment(json) => {
            tx.execute(
                "INSERT INTO config (key, value) VALUES ('deployment', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [json],
            )?;
        }
        CatalogWrite::PutModule { hash, source, source_map } => {
            tx.execute("INSERT OR IGNORE INTO modules (hash, source) VALUES (?1, ?2)", params![hash, source])?;
            if let Some(map) = source_map {
                // The latest upload wins: a map names files, which can move while the code stays.
                tx.execute(
                    "INSERT INTO module_source_maps (hash, map) VALUES (?1, ?2) ON CONFLICT(hash) DO UPDATE SET map = excluded.map",
                    params![hash, map],
                )?;
            }
        }
        CatalogWrite::SetEnv { name, value: Some(value) } => {
            tx.execute(
                "INSERT INTO env_vars (name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                params![name, value],
            )?;
        }
        CatalogWrite::SetEnv { name, value: None } => {
            tx.execute("DELETE FROM env_vars WHERE name = ?1", [name])?;
        }
    }
    Ok(())
}

fn apply_commit(tx: &rusqlite::Transaction, commit: &CommitRecord) -> Result<()> {
    let ts = commit.ts as i64;
    let mut doc_stmt = tx.prepare_cached("INSERT INTO documents (id, ts, value) VALUES (?1, ?2, ?3)")?;
    for d in &commit.documents {
        doc_stmt.execute(params![&id_to_bytes(&d.id)[..], ts, d.value.as_ref().map(encode_doc)])?;
    }
    let mut idx_stmt =
        tx.prepare_cached("INSERT INTO index_entries (index_id, key, ts, doc_id) VALUES (?1, ?2, ?3, ?4)")?;
    for e in &commit.index_entries {
        let doc = e.doc_id.map(|d| id_to_bytes(&d).to_vec());
        idx_stmt.execute(params![e.index_id, e.key, ts, doc])?;
    }
    Ok(())
}
