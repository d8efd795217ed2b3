//! Raw rusqlite inserts with Convect's durability settings (WAL,
//! `synchronous=FULL`) into a table shaped like Convect's `documents` log:
//! the floor that the HTTP figures can be compared with.

use crate::doc;
use crate::stats::Measurement;
use anyhow::Result;
use rusqlite::{params, Connection};
use std::path::Path;
use std::time::{Duration, Instant};

pub const PATH: &str = "raw SQLite";

const SCHEMA: &str = "CREATE TABLE documents (
  id BLOB NOT NULL, ts INTEGER NOT NULL, value TEXT,
  PRIMARY KEY (id, ts)) WITHOUT ROWID;";

/// A fresh database that rounds of inserts are added to.
pub struct RawDb {
    conn: Connection,
    next: usize,
}

/// The `load` column of a raw SQLite row.
pub fn shape_of(per_commit: usize) -> String {
    format!("{per_commit} row{}/commit", if per_commit == 1 { "" } else { "s" })
}

impl RawDb {
    /// Creates the database at `path` with the server's pragmas.
    pub fn create(path: &Path) -> Result<RawDb> {
        let _ = std::fs::remove_file(path);
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(RawDb { conn, next: 0 })
    }

    /// Inserts `count` rows in one transaction.
    fn commit_rows(&mut self, count: usize) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("INSERT INTO documents (id, ts, value) VALUES (?1, ?2, ?3)")?;
            for n in self.next..self.next + count {
                // Table number then 16 random bytes, as Convect lays out ids.
                let mut id = [0u8; 20];
                id[3] = 1;
                id[4..].copy_from_slice(&rand::random::<[u8; 16]>());
                stmt.execute(params![&id[..], n as i64, doc::stored(n, &id[4..])])?;
            }
        }
        tx.commit()?;
        self.next += count;
        Ok(())
    }

    /// Inserts up to `rows` documents, `per_commit` per transaction, stopping
    /// early at `deadline`; each transaction's latency is recorded.
    pub fn run(&mut self, rows: usize, per_commit: usize, deadline: Duration) -> Result<Measurement> {
        let mut latencies = Vec::with_capacity(rows / per_commit + 1);
        let start = Instant::now();
        let mut done = 0;
        while done < rows && start.elapsed() < deadline {
            let count = per_commit.min(rows - done);
            let t = Instant::now();
            self.commit_rows(count)?;
            latencies.push(t.elapsed());
            done += count;
        }
        Ok(Measurement::new(PATH, shape_of(per_commit), done, start.elapsed(), latencies))
    }
}
