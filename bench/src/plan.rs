//! The phases of a run and their scheduling. The run is split into rounds, and
//! every round runs each phase once on its share of the work, so that raw SQLite
//! and the HTTP path sample the same background load (other processes' disk
//! traffic makes fsync latency vary by 10x within minutes on a shared machine).

use crate::load::{self, Load};
use crate::machine::cpu_time;
use crate::rawsqlite::RawDb;
use crate::server::Server;
use crate::stats::Measurement;
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// What one phase measures.
#[derive(Clone, Copy)]
pub enum Phase {
    /// Raw SQLite, `per_commit` rows per transaction, `rows` in all.
    Raw { per_commit: usize, rows: usize },
    /// HTTP mutations from `concurrency` clients, `mutations` in all.
    Http { concurrency: usize, mutations: usize },
}

/// Runs phases against one server and one set of raw databases.
pub struct Runner<'a> {
    server: &'a Server,
    client: reqwest::Client,
    work: &'a Path,
    raw: HashMap<usize, RawDb>,
    next_doc: usize,
}

/// Round `round`'s share of `total` (the shares of all rounds add up to `total`).
fn share(total: usize, rounds: usize, round: usize) -> usize {
    total * (round + 1) / rounds - total * round / rounds
}

impl<'a> Runner<'a> {
    pub fn new(server: &'a Server, work: &'a Path, max_concurrency: usize) -> Result<Self> {
        Ok(Runner { server, client: load::client(max_concurrency)?, work, raw: HashMap::new(), next_doc: 0 })
    }

    /// Sends `count` unmeasured mutations from 16 clients (connections, caches).
    pub async fn warm_up(&mut self, count: usize) -> Result<()> {
        let warm = self.http(16, count, Duration::from_secs(30)).await;
        if warm.errors > 0 {
            bail!("{} of {count} warm-up mutations failed; see the errors above", warm.errors);
        }
        Ok(())
    }

    /// Runs every phase `rounds` times on a share of its work; one result per phase.
    pub async fn run(&mut self, phases: &[Phase], rounds: usize, deadline: Duration) -> Result<Vec<Measurement>> {
        let mut results: Vec<Option<Measurement>> = phases.iter().map(|_| None).collect();
        for round in 0..rounds {
            for (phase, result) in phases.iter().zip(&mut results) {
                let m = self.phase(*phase, |total| share(total, rounds, round), deadline / rounds as u32).await?;
                match result {
                    Some(r) => r.absorb(m),
                    None => *result = Some(m),
                }
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    async fn phase(&mut self, phase: Phase, share: impl Fn(usize) -> usize, deadline: Duration) -> Result<Measurement> {
        match phase {
            Phase::Raw { per_commit, rows } => self.raw_db(per_commit)?.run(share(rows), per_commit, deadline),
            Phase::Http { concurrency, mutations } => Ok(self.http(concurrency, share(mutations), deadline).await),
        }
    }

    fn raw_db(&mut self, per_commit: usize) -> Result<&mut RawDb> {
        if !self.raw.contains_key(&per_commit) {
            let db = RawDb::create(&self.work.join(format!("raw-{per_commit}.sqlite3")))?;
            self.raw.insert(per_commit, db);
        }
        Ok(self.raw.get_mut(&per_commit).expect("just inserted"))
    }

    /// One HTTP phase, with the CPU time the server and this process used meanwhile.
    async fn http(&mut self, concurrency: usize, mutations: usize, deadline: Duration) -> Measurement {
        let server_pid = self.server.pid().map_or_else(|| "0".into(), |p| p.to_string());
        let cpu = || (cpu_time(&server_pid), cpu_time("self"));
        let before = cpu();
        let load = Load { call: load::INSERT, concurrency, mutations, deadline, first: self.next_doc };
        self.next_doc += mutations;
        let outcome = load::run(&self.client, &self.server.url, load).await;
        let after = cpu();
        let shape = load::shape_of(concurrency);
        if let Some(e) = &outcome.first_error {
            eprintln!("{} ({shape}): {} failed, first error: {e}", load::PATH, outcome.errors);
        }
        let used = |a: Option<Duration>, b: Option<Duration>| Some(b? - a?);
        let mut m = Measurement::new(load::PATH, shape, outcome.latencies.len(), outcome.elapsed, outcome.latencies);
        m.errors = outcome.errors;
        m.server_cpu = used(before.0, after.0);
        m.client_cpu = used(before.1, after.1);
        m
    }
}
