//! The HTTP load generator: `concurrency` workers, each with its own keep-alive
//! connection from a shared pool, call one function (`items:insert` one
//! document at a time, or any other [`Call`]) until a fixed number of calls
//! (or a time limit) is reached; and [`compare`], which measures several calls
//! under the same load, interleaved so that they share the background load,
//! anonymously or ([`compare_as`]) as a signed-in [`User`].

use crate::doc;
use crate::machine::tree_cpu_time;
use crate::server::Server;
use crate::stats::Measurement;
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

/// A signed-in user that a contender calls as: every request carries
/// `Authorization: Bearer {token}`, and every answer must be `answer`, so that
/// a call the server ran anonymously fails the run instead of counting.
#[derive(Clone)]
pub struct User {
    pub token: String,
    pub answer: Value,
}

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

/// Posts function `path` with `args` to `endpoint`; its value, only on `{"status":"success"}`.
pub async fn value_of(client: &reqwest::Client, endpoint: &str, path: &str, args: Value) -> Result<Value> {
    value_as(client, endpoint, None, path, args).await
}

/// As [`value_of`], with `Authorization: Bearer {token}` if there is a token.
async fn value_as(client: &reqwest::Client, endpoint: &str, token: Option<&str>, path: &str, args: Value) -> Result<Value> {
    let body = json!({ "path": path, "args": args, "format": "convex_encoded_json" });
    let mut request = client.post(endpoint).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let res = request.send().await?;
    let status = res.status();
    let text = res.text().await?;
    match serde_json::from_str::<Value>(&text) {
        Ok(mut v) if status.is_success() && v["status"] == "success" => Ok(v["value"].take()),
        _ => bail!("HTTP {status}: {text}"),
    }
}

/// Makes call number `n`, as `user` if there is one.
async fn call(client: &reqwest::Client, endpoint: &str, what: Call, n: usize, user: Option<&User>) -> Result<()> {
    let value = value_as(client, endpoint, user.map(|u| u.token.as_str()), what.path, (what.args)(n)).await?;
    match user {
        Some(user) if value != user.answer => bail!("{} answered {value} to a user's token, not {}", what.path, user.answer),
        _ => Ok(()),
    }
}

/// One worker: takes mutation numbers from `next` until they run out or time is up.
async fn worker(
    client: reqwest::Client,
    endpoint: Arc<str>,
    next: Arc<AtomicUsize>,
    load: Arc<Load>,
    user: Option<Arc<User>>,
    start: Instant,
) -> Outcome {
    let mut out = Outcome::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= load.mutations || start.elapsed() > load.deadline {
            return out;
        }
        let t = Instant::now();
        match call(&client, &endpoint, load.call, load.first + n, user.as_deref()).await {
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
    run_as(client, url, load, None).await
}

/// Runs one phase against `url`, as `user` if there is one.
async fn run_as(client: &reqwest::Client, url: &str, load: Load, user: Option<&User>) -> Outcome {
    let endpoint: Arc<str> = format!("{url}{}", load.call.route).into();
    let next = Arc::new(AtomicUsize::new(0));
    let load = Arc::new(load);
    let user = user.cloned().map(Arc::new);
    let start = Instant::now();
    let mut workers = JoinSet::new();
    for _ in 0..load.concurrency {
        workers.spawn(worker(client.clone(), endpoint.clone(), next.clone(), load.clone(), user.clone(), start));
    }
    let mut total = Outcome::default();
    while let Some(done) = workers.join_next().await {
        total.merge(done.expect("a load worker panicked"));
    }
    total.elapsed = start.elapsed();
    total
}

/// One row of a [`compare`]: `call` posted to the server at `url`, reported as `name`.
#[derive(Clone, Copy)]
pub struct Contender<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub call: Call,
}

/// Measures every contender at each `(concurrency, calls)` of `loads`: one row
/// per contender and load, in load order. The calls are split into `rounds`
/// rounds that alternate the contenders, so that all see the same background
/// load, after 200 unmeasured calls of each (workers, connections, caches).
pub async fn compare(server: &Server, contenders: &[Contender<'_>], loads: &[(usize, usize)], rounds: usize) -> Result<Vec<Measurement>> {
    let anonymous: Vec<_> = contenders.iter().map(|&contender| (contender, None)).collect();
    compare_as(server, &anonymous, loads, rounds).await
}

/// As [`compare`], each contender calling as its user, if it has one.
pub async fn compare_as(
    server: &Server,
    contenders: &[(Contender<'_>, Option<&User>)],
    loads: &[(usize, usize)],
    rounds: usize,
) -> Result<Vec<Measurement>> {
    let max = loads.iter().map(|&(concurrency, _)| concurrency).max().unwrap_or(1);
    let client = client(max)?;
    for &(contender, user) in contenders {
        measure(server, &client, contender, user, max, 200, 0).await?;
    }
    let rounds = rounds.max(1);
    let mut rows: Vec<Measurement> = Vec::new();
    for round in 0..rounds {
        for &(concurrency, total) in loads {
            for &(contender, user) in contenders {
                let m = measure(server, &client, contender, user, concurrency, total / rounds, round * total).await?;
                match rows.iter_mut().find(|r| r.path == m.path && r.shape == m.shape) {
                    Some(r) => r.absorb(m),
                    None => rows.push(m),
                }
            }
        }
    }
    Ok(rows)
}

/// One phase of a comparison, with the CPU time of the server and its children (Node.js workers).
async fn measure(
    server: &Server,
    client: &reqwest::Client,
    c: Contender<'_>,
    user: Option<&User>,
    concurrency: usize,
    calls: usize,
    first: usize,
) -> Result<Measurement> {
    let pid = server.pid().map_or_else(|| "0".into(), |p| p.to_string());
    let before = tree_cpu_time(&pid);
    let load = Load { call: c.call, concurrency, mutations: calls, deadline: Duration::from_secs(120), first };
    let outcome = run_as(client, c.url, load, user).await;
    if let Some(e) = outcome.first_error {
        bail!("{} failed {} times; first error: {e}", c.call.path, outcome.errors);
    }
    let mut m = Measurement::new(c.name, shape_of(concurrency), outcome.latencies.len(), outcome.elapsed, outcome.latencies);
    m.server_cpu = tree_cpu_time(&pid).zip(before).map(|(a, b)| a - b);
    Ok(m)
}
