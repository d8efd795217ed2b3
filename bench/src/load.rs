//! The HTTP load generator: `concurrency` workers, each with its own keep-alive
//! connection from a shared pool, call one function (`items:insert` one
//! document at a time, or any other [`Call`]) until a fixed number of calls
//! (or a time limit) is reached.

use crate::doc;
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

pub const PATH: &str = "HTTP mutation";

/// The `load` column of an HTTP row.
pub fn shape_of(concurrency: usize) -> String {
    match concurrency {
        1 => "1 at a time".into(),
        c => format!("{c} concurrent"),
    }
}

/// The function a load phase calls: `POST {route}` with `path` and the
/// arguments for call number `n`.
#[derive(Clone, Copy)]
pub struct Call {
    pub route: &'static str,
    pub path: &'static str,
    pub args: fn(usize) -> Value,
}

/// Inserts one benchmark document per call.
pub const INSERT: Call = Call { route: "/api/mutation", path: "items:insert", args: doc::args };

/// One load phase.
pub struct Load {
    pub call: Call,
    pub concurrency: usize,
    pub mutations: usize,
    pub deadline: Duration,
    /// Number of the first document, so that phases insert distinct `n`s.
    pub first: usize,
}

/// What the workers saw.
#[derive(Default)]
pub struct Outcome {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }
}

/// A client that keeps one connection per concurrent worker open.
pub fn client(max_concurrency: usize) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(max_concurrency)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()?)
}

/// Makes call number `n`; Ok only on `{"status":"success"}`.
async fn call(client: &reqwest::Client, endpoint: &str, what: Call, n: usize) -> Result<()> {
    let body = json!({ "path": what.path, "args": (what.args)(n), "format": "convex_encoded_json" });
    let res = client.post(endpoint).json(&body).send().await?;
    let status = res.status();
    let text = res.text().await?;
    let ok = serde_json::from_str::<Value>(&text).is_ok_and(|v| v["status"] == "success");
    if !status.is_success() || !ok {
        bail!("HTTP {status}: {text}");
    }
    Ok(())
}

/// One worker: takes mutation numbers from `next` until they run out or time is up.
async fn worker(client: reqwest::Client, endpoint: Arc<str>, next: Arc<AtomicUsize>, load: Arc<Load>, start: Instant) -> Outcome {
    let mut out = Outcome::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= load.mutations || start.elapsed() > load.deadline {
            return out;
        }
        let t = Instant::now();
        match call(&client, &endpoint, load.call, load.first + n).await {
            Ok(()) => out.latencies.push(t.elapsed()),
            Err(e) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
}

/// Runs one phase against `url`.
pub async fn run(client: &reqwest::Client, url: &str, load: Load) -> Outcome {
    let endpoint: Arc<str> = format!("{url}{}", load.call.route).into();
    let next = Arc::new(AtomicUsize::new(0));
    let load = Arc::new(load);
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..load.concurrency {
        workers.spawn(worker(client.clone(), endpoint.clone(), next.clone(), load.clone(), start));
    }
    let mut total = Outcome::default();
    while let Some(done) = workers.join_next().await {
        total.merge(done.expect("a load worker panicked"));
    }
    total.elapsed = start.elapsed();
    total
}
