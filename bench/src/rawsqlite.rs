//! Raw rusqlite inserts with Convect's durability settings (WAL,
//! `synchronous=FULL`) into a table shaped like Convect's `documents` log:
//! the floor that the HTTP figures can be compared with.

use crate::doc;
use crate::stats::Measurement;
use anyhow::Result;
use rusqlite::{params, Connection};
use std::path::Path;
use std::time::{Duration, Instant};

const SCHEMA: &str = "CREATE TABLE documents (
  id BLOB NOT NULL, ts INTEGER NOT NULL, value TEXT,
  PRIMARY KEY (id, ts)) WITHOUT ROWID;";

/// Opens a fresh database at `path` with the server's pragmas.
fn open(path: &Path) -> Result<Connection> {
    let _ = std::fs::remove_file(path);
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// Inserts rows `first..first + count` in one transaction.
fn commit_rows(conn: &mut Connection, first: usize, count: usize) -> Result<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached("INSERT INTO documents (id, ts, value) VALUES (?1, ?2, ?3)")?;
        for n in first..first + count {
            // Table number then 16 random bytes, as Convect lays out ids.
            let mut id = [0u8; 20];
            id[3] = 1;
            id[4..].copy_from_slice(&rand::random::<[u8; 16]>());
            stmt.execute(params![&id[..], n as i64, doc::stored(n, &id)])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Inserts up to `rows` documents, `per_commit` per transaction, stopping early
/// at `deadline`; each transaction's latency is recorded.
pub fn run(path: &Path, rows: usize, per_commit: usize, deadline: Duration) -> Result<Measurement> {
    let mut conn = open(path)?;
    let mut latencies = Vec::with_capacity(rows / per_commit + 1);
    let start = Instant::now();
    let mut done = 0;
    while done < rows && start.elapsed() < deadline {
        let count = per_commit.min(rows - done);
        let t = Instant::now();
        commit_rows(&mut conn, done, count)?;
        latencies.push(t.elapsed());
        done += count;
    }
    let shape = format!("{per_commit} row{}/commit", if per_commit == 1 { "" } else { "s" });
    Ok(Measurement::new("raw SQLite", shape, done, start.elapsed(), latencies))
}
