//! `convect-bench live`: live queries over the sync protocol. One server, one
//! run, in this order:
//!
//! 1. memory: server RSS with no connections, with `clients` idle connections
//!    (`Connect` only), then with one distinct subscription on each;
//! 2. selectivity: with those `clients` distinct subscriptions, the server's
//!    count of query executions per write to one random key (should be 1) and
//!    per write to an unrelated table (should be 0), and that only the one
//!    subscriber of the written key hears of it;
//! 3. fan-out: all connections closed, then 1, `fanout` and `clients` clients
//!    subscribed to the same key; for each write (an HTTP mutation), the time
//!    from sending it to each client's receipt of the new value, beside HTTP
//!    round trips of the same query measured between the writes.
//!
//! Every wait is bounded: a write whose update does not reach every subscriber
//! within `WRITE_TIMEOUT` counts the missing deliveries as lost.

use crate::machine::cpu_time;
use crate::server::Server;
use crate::ws::{Clients, Event};
use anyhow::{bail, Context, Result};
use rand::Rng;
use serde_json::{json, Value};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Longest wait for one write to reach all its subscribers.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a set of new subscriptions to answer with their first result.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(90);
/// Time limit of each sequence of writes; a phase that hits it reports what it completed.
const PHASE_DEADLINE: Duration = Duration::from_secs(40);
/// Keys seeded per `items:seed` mutation.
const SEED_BATCH: usize = 1_000;
/// The key every fan-out subscriber watches.
pub const HOT: &str = "hot";
/// Problems quoted in the report.
const QUOTED_PROBLEMS: usize = 5;

#[derive(clap::Args)]
pub struct LiveArgs {
    /// Clients of the largest fan-out, and of the memory and selectivity phases
    /// (each with its own subscription there)
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Subscribers of the mid-size fan-out
    #[arg(long, default_value_t = 1_000)]
    pub fanout: usize,
    /// Writes at 1 and at `fanout` subscribers
    #[arg(long, default_value_t = 50)]
    pub writes: usize,
    /// Writes at `clients` subscribers
    #[arg(long, default_value_t = 10)]
    pub big_writes: usize,
    /// Writes to random keys, and to an unrelated table, with `clients` distinct subscriptions
    #[arg(long, default_value_t = 100)]
    pub distinct_writes: usize,
    /// HTTP query round trips after each write at 1 and at `fanout` subscribers (the baseline)
    #[arg(long, default_value_t = 4)]
    pub queries_per_write: usize,
    /// Connections opened (or subscriptions sent) at once; keep it below the
    /// server's listen backlog (128), or SYNs are dropped and retried after 1 s
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Print the figures without updating BENCHMARKS.md
    #[arg(long)]
    pub no_write: bool,
}

/// One sequence of writes observed by subscribers.
pub struct FanOut {
    /// What subscribed, e.g. "1,000 clients, one key".
    pub label: String,
    pub subscribers: usize,
    /// Whether all subscribers watch the written key (or each its own key).
    pub shared: bool,
    pub writes: usize,
    /// Send-to-receipt time of every delivery (sorted).
    pub deliveries: Vec<Duration>,
    /// Send-to-last-receipt time of each write that reached every subscriber (sorted).
    pub last: Vec<Duration>,
    /// Deliveries that did not arrive within `WRITE_TIMEOUT`.
    pub lost: usize,
    /// The write (0 = the first after subscribing) whose last delivery took longest, and that time.
    pub slowest: Option<(usize, Duration)>,
    /// Server and bench CPU time while writes were in flight.
    pub server_cpu: Duration,
    pub bench_cpu: Duration,
}

impl FanOut {
    fn new(label: String, subscribers: usize, shared: bool) -> FanOut {
        FanOut {
            label,
            subscribers,
            shared,
            writes: 0,
            deliveries: Vec::new(),
            last: Vec::new(),
            lost: 0,
            slowest: None,
            server_cpu: Duration::ZERO,
            bench_cpu: Duration::ZERO,
        }
    }
}

pub struct Executions {
    pub label: String,
    pub writes: usize,
    pub subscriptions: usize,
    pub executions: u64,
    pub expected: u64,
}

pub struct MemoryRow {
    pub label: String,
    pub connections: usize,
    pub rss_kib: u64,
    /// Open file descriptors of the server (its sockets among them).
    pub open_files: Option<usize>,
    /// The row this one's difference is taken against, and what it is per (connection, subscription).
    pub per: Option<(usize, &'static str)>,
}

/// What writes that no subscription reads cost the server with so many clients connected.
pub struct WriteCost {
    pub label: String,
    pub connections: usize,
    /// HTTP round trips of the writes (sorted).
    pub latencies: Vec<Duration>,
    pub server_cpu: Duration,
}

/// How long it took to set up a phase.
pub struct Setup {
    pub what: String,
    pub elapsed: Duration,
}

#[derive(Default)]
pub struct LiveResults {
    pub fan_outs: Vec<FanOut>,
    /// HTTP round trips of `items:byKey`, and of the `items:bump` writes (sorted at the end).
    pub http_query: Vec<Duration>,
    pub http_mutation: Vec<Duration>,
    pub executions: Vec<Executions>,
    pub write_costs: Vec<WriteCost>,
    pub memory: Vec<MemoryRow>,
    pub setup: Vec<Setup>,
    /// Connections this machine dropped for a full listen queue during the run (any process's).
    pub listen_overflows: Option<u64>,
    /// Updates no write explains (a client that was not subscribed to the written key, or a wrong value).
    pub unexpected: usize,
    /// Failed queries, server errors and connections that ended.
    pub problems: usize,
    pub quoted: Vec<String>,
}

/// Server RSS from /proc/<pid>/status.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn open_files(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

struct Live<'a> {
    server: &'a Server,
    pid: u32,
    http: reqwest::Client,
    clients: Clients,
    results: LiveResults,
}

fn key_of(client: usize) -> String {
    format!("k{client:05}")
}

fn thousands(n: usize) -> String {
    crate::report::thousands(n as f64)
}

pub async fn run(server: &Server, args: &LiveArgs) -> Result<LiveResults> {
    let pid = server.pid().context("the server has exited")?;
    let mut live = Live { server, pid, http: crate::load::client(4)?, clients: Clients::new(&server.url)?, results: LiveResults::default() };
    let overflows_before = crate::machine::listen_overflows();
    live.prepare(args.clients).await?;
    live.memory_and_selectivity(args).await?;
    live.fan_outs(args).await?;
    let r = &mut live.results;
    r.listen_overflows = crate::machine::listen_overflows().zip(overflows_before).map(|(after, before)| after.saturating_sub(before));
    // The row measured first (one subscriber of many distinct keys) reads best after the shared-key rows.
    r.fan_outs.sort_by_key(|f| !f.shared);
    r.http_query.sort_unstable();
    r.http_mutation.sort_unstable();
    Ok(live.results)
}

impl Live<'_> {
    /// Calls a function over HTTP; its value on success.
    async fn call(&self, kind: &str, path: &str, args: Value) -> Result<Value> {
        let body = json!({ "path": path, "args": args, "format": "convex_encoded_json" });
        let res = self.http.post(format!("{}/api/{kind}", self.server.url)).json(&body).send().await?;
        let status = res.status();
        let text = res.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() || value["status"] != "success" {
            bail!("{kind} {path}: HTTP {status}: {text}");
        }
        Ok(value["value"].clone())
    }

    async fn executions(&self) -> Result<u64> {
        let res = self
            .http
            .get(format!("{}/api/convect/metrics", self.server.url))
            .header("Authorization", format!("Convex {}", self.server.admin_key))
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        value["subscriptionExecutions"].as_u64().with_context(|| format!("metrics: HTTP {status}: {text}"))
    }

    /// RSS once it has stopped moving (bounded: at most about 5 s).
    async fn settled_rss(&self) -> Result<u64> {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let read = || rss_kib(self.pid).context("cannot read the server's RSS (has it exited?)");
        let mut last = read()?;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = read()?;
            if now.abs_diff(last) < 256 {
                return Ok(now);
            }
            last = now;
        }
        Ok(last)
    }

    fn problem(&mut self, client: usize, what: String) {
        self.results.problems += 1;
        if self.results.quoted.len() < QUOTED_PROBLEMS {
            self.results.quoted.push(format!("client {client}: {what}"));
        }
    }

    fn unexpected(&mut self, what: String) {
        self.results.unexpected += 1;
        if self.results.quoted.len() < QUOTED_PROBLEMS {
            self.results.quoted.push(what);
        }
    }

    /// Takes events that arrived when none were due, counting them.
    fn drain(&mut self) {
        while let Ok(event) = self.clients.received.try_recv() {
            match event {
                Event::Update { client, value, .. } => self.unexpected(format!("client {client} received {value:?} unprompted")),
                Event::Problem { client, what } => self.problem(client, what),
            }
        }
    }

    /// Creates the counters (`clients` distinct keys and the hot key) and warms up.
    async fn prepare(&mut self, clients: usize) -> Result<()> {
        let started = Instant::now();
        let keys: Vec<String> = (0..clients).map(key_of).chain([HOT.to_owned()]).collect();
        for chunk in keys.chunks(SEED_BATCH) {
            self.call("mutation", "items:seed", json!({ "keys": chunk })).await?;
        }
        for _ in 0..20 {
            self.call("mutation", "items:bump", json!({ "key": "warm-up" })).await?;
            self.call("query", "items:byKey", json!({ "key": HOT })).await?;
        }
        self.results.setup.push(Setup { what: format!("seed {} counters", thousands(keys.len())), elapsed: started.elapsed() });
        Ok(())
    }

    /// Waits for the first result of every client in `range` (its subscription's answer).
    async fn await_first_results(&mut self, range: Range<usize>) -> Result<()> {
        let mut seen = vec![false; range.len()];
        let mut count = 0;
        let deadline = tokio::time::Instant::now() + SUBSCRIBE_TIMEOUT;
        while count < range.len() {
            let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.clients.received.recv()).await else { break };
            match event {
                Event::Update { client, query_id: 0, value: Some(_), .. } if range.contains(&client) && !seen[client - range.start] => {
                    seen[client - range.start] = true;
                    count += 1;
                }
                Event::Update { client, value, .. } => self.unexpected(format!("client {client} received {value:?} while subscribing")),
                Event::Problem { client, what } => self.problem(client, what),
            }
        }
        if count < range.len() {
            bail!("only {count} of {} new subscriptions answered within {SUBSCRIBE_TIMEOUT:?}", range.len());
        }
        Ok(())
    }

    /// Opens `count` clients subscribed to `key(client)` and waits for their first results.
    async fn open_subscribed(&mut self, count: usize, batch: usize, key: impl Fn(usize) -> String, what: String) -> Result<()> {
        let started = Instant::now();
        let first = self.clients.len();
        self.clients.open(count, batch, |c| Some(key(c))).await?;
        self.await_first_results(first..first + count).await?;
        self.results.setup.push(Setup { what, elapsed: started.elapsed() });
        Ok(())
    }

    /// Bumps `key` over HTTP and waits until every client in `subscribers`
    /// has received the new value. Returns each delivery's send-to-receipt
    /// time and how many did not arrive.
    async fn write(&mut self, key: &str, subscribers: Range<usize>) -> Result<(Vec<Duration>, usize)> {
        self.drain();
        let sent = Instant::now();
        let value = self.call("mutation", "items:bump", json!({ "key": key })).await?;
        self.results.http_mutation.push(sent.elapsed());
        let n = value.as_f64().with_context(|| format!("items:bump returned {value}"))?;
        let mut seen = vec![false; subscribers.len()];
        let mut deliveries = Vec::with_capacity(subscribers.len());
        let deadline = tokio::time::Instant::from_std(sent + WRITE_TIMEOUT);
        while deliveries.len() < subscribers.len() {
            let Ok(Some(event)) = tokio::time::timeout_at(deadline, self.clients.received.recv()).await else { break };
            match event {
                Event::Update { client, query_id: 0, value: Some(v), at }
                    if v == n && subscribers.contains(&client) && !seen[client - subscribers.start] =>
                {
                    seen[client - subscribers.start] = true;
                    deliveries.push(at.saturating_duration_since(sent));
                }
                Event::Update { client, value, .. } => {
                    self.unexpected(format!("client {client} received {value:?} after the write of {n} to {key}"))
                }
                Event::Problem { client, what } => self.problem(client, what),
            }
        }
        let lost = subscribers.len() - deliveries.len();
        if lost > 0 && self.results.quoted.len() < QUOTED_PROBLEMS {
            self.results.quoted.push(format!("{lost} of {} subscribers did not receive {key} = {n} within {WRITE_TIMEOUT:?}", subscribers.len()));
        }
        Ok((deliveries, lost))
    }

    /// Times `writes` writes to `key`, each awaited by `subscribers`, with
    /// `queries` HTTP query round trips of the same key after each.
    async fn fan_out(&mut self, label: String, subscribers: Range<usize>, writes: usize, queries: usize, key: impl Fn(usize) -> String) -> Result<FanOut> {
        let mut out = FanOut::new(label, subscribers.len(), true);
        let server_pid = self.pid.to_string();
        let cpu = || (cpu_time(&server_pid).unwrap_or_default(), cpu_time("self").unwrap_or_default());
        let started = Instant::now();
        for w in 0..writes {
            if started.elapsed() > PHASE_DEADLINE {
                eprintln!("{}: stopped after {w} of {writes} writes ({PHASE_DEADLINE:?} limit)", out.label);
                break;
            }
            let write_key = key(w);
            let before = cpu();
            let (deliveries, lost) = self.write(&write_key, subscribers.clone()).await?;
            let after = cpu();
            out.server_cpu += after.0.saturating_sub(before.0);
            out.bench_cpu += after.1.saturating_sub(before.1);
            out.writes += 1;
            out.lost += lost;
            if lost == 0 {
                let last = deliveries.iter().max().copied().unwrap_or_default();
                out.last.push(last);
                if out.slowest.is_none_or(|(_, t)| last > t) {
                    out.slowest = Some((w, last));
                }
            }
            out.deliveries.extend(deliveries);
            for _ in 0..queries {
                let t = Instant::now();
                self.call("query", "items:byKey", json!({ "key": write_key })).await?;
                self.results.http_query.push(t.elapsed());
            }
        }
        out.deliveries.sort_unstable();
        out.last.sort_unstable();
        Ok(out)
    }

    /// Inserts `count` documents into `items`, which no subscription reads,
    /// one at a time, timing each and the server's CPU over all of them.
    async fn unrelated_writes(&mut self, label: String, count: usize) -> Result<()> {
        let pid = self.pid.to_string();
        let cpu_before = cpu_time(&pid).unwrap_or_default();
        let started = Instant::now();
        let mut latencies = Vec::with_capacity(count);
        for i in 0..count {
            if started.elapsed() > PHASE_DEADLINE {
                eprintln!("{label}: stopped after {i} of {count} inserts ({PHASE_DEADLINE:?} limit)");
                break;
            }
            let t = Instant::now();
            self.call("mutation", "items:insert", crate::doc::args(i)).await?;
            latencies.push(t.elapsed());
        }
        let server_cpu = cpu_time(&pid).unwrap_or_default().saturating_sub(cpu_before);
        latencies.sort_unstable();
        self.results.write_costs.push(WriteCost { label, connections: self.clients.len(), latencies, server_cpu });
        Ok(())
    }

    fn remember_rss(&mut self, label: String, connections: usize, rss_kib: u64, per: Option<(usize, &'static str)>) {
        let open_files = open_files(self.pid);
        println!("server RSS {label}: {rss_kib} KiB, {open_files:?} open files");
        self.results.memory.push(MemoryRow { label, connections, rss_kib, open_files, per });
    }

    async fn memory_and_selectivity(&mut self, args: &LiveArgs) -> Result<()> {
        let n = args.clients;
        let rss = self.settled_rss().await?;
        self.remember_rss("no connections (functions deployed, counters seeded)".into(), 0, rss, None);
        self.unrelated_writes("no connections".into(), args.distinct_writes).await?;

        let started = Instant::now();
        self.clients.open(n, args.batch, |_| None).await?;
        self.results.setup.push(Setup { what: format!("open {} idle connections", thousands(n)), elapsed: started.elapsed() });
        let rss = self.settled_rss().await?;
        self.remember_rss("idle clients (`Connect` only)".into(), n, rss, Some((0, "connection")));
        self.unrelated_writes(format!("{} idle connections (no subscriptions)", thousands(n)), args.distinct_writes).await?;

        let started = Instant::now();
        self.clients.subscribe(0..n, args.batch, key_of).await?;
        self.await_first_results(0..n).await?;
        self.results.setup.push(Setup {
            what: format!("subscribe them to {} distinct queries", thousands(n)),
            elapsed: started.elapsed(),
        });
        let rss = self.settled_rss().await?;
        self.remember_rss("each client with one distinct subscription".into(), n, rss, Some((1, "subscription")));

        // Executions per write when the write affects one of n subscriptions.
        let mut rng = rand::rng();
        let targets: Vec<usize> = (0..args.distinct_writes).map(|_| rng.random_range(0..n)).collect();
        let before = self.executions().await?;
        let mut one_of_n = FanOut::new(format!("1 of {} clients, each on its own key", thousands(n)), 1, false);
        let started = Instant::now();
        for &t in &targets {
            if started.elapsed() > PHASE_DEADLINE {
                eprintln!("{}: stopped after {} of {} writes ({PHASE_DEADLINE:?} limit)", one_of_n.label, one_of_n.writes, targets.len());
                break;
            }
            let phase = self.fan_out(String::new(), t..t + 1, 1, 0, |_| key_of(t)).await?;
            one_of_n.writes += phase.writes;
            one_of_n.lost += phase.lost;
            one_of_n.deliveries.extend(phase.deliveries);
            one_of_n.last.extend(phase.last);
            one_of_n.server_cpu += phase.server_cpu;
            one_of_n.bench_cpu += phase.bench_cpu;
        }
        one_of_n.deliveries.sort_unstable();
        one_of_n.last.sort_unstable();
        let after = self.executions().await?;
        self.results.executions.push(Executions {
            label: "`items:bump` of one random counter".into(),
            writes: one_of_n.writes,
            subscriptions: n,
            executions: after - before,
            expected: one_of_n.writes as u64,
        });
        self.results.fan_outs.push(one_of_n);

        // Writes to a table no subscription reads, then one write to a
        // subscribed key as a fence: when its update arrives, the hub has
        // processed every earlier commit.
        let before = self.executions().await?;
        self.unrelated_writes(format!("{} connections, each with its own subscription", thousands(n)), args.distinct_writes).await?;
        let inserted = self.results.write_costs.last().map_or(0, |c| c.latencies.len());
        let fence = rng.random_range(0..n);
        let (_, lost) = self.write(&key_of(fence), fence..fence + 1).await?;
        if lost > 0 {
            bail!("the fence write after the unrelated inserts did not reach its subscriber");
        }
        let after = self.executions().await?;
        self.results.executions.push(Executions {
            label: "`items:insert` into `items`, which no subscription reads".into(),
            writes: inserted,
            subscriptions: n,
            executions: (after - before).saturating_sub(1),
            expected: 0,
        });

        self.clients.close_all();
        let rss = self.settled_rss().await?;
        self.remember_rss("all clients disconnected again".into(), 0, rss, None);
        Ok(())
    }

    async fn fan_outs(&mut self, args: &LiveArgs) -> Result<()> {
        let n = args.clients;
        let fanout = args.fanout.clamp(1, n.max(1));
        let hot = |_: usize| HOT.to_owned();
        self.drain();
        self.open_subscribed(1, args.batch, hot, "open 1 client subscribed to the hot key".into()).await?;
        let one = self.fan_out("1 client".into(), 0..1, args.writes, args.queries_per_write, hot).await?;
        self.results.fan_outs.push(one);

        self.open_subscribed(fanout - 1, args.batch, hot, format!("open {} more on the same key", thousands(fanout - 1))).await?;
        let mid = self.fan_out(format!("{} clients, same key", thousands(fanout)), 0..fanout, args.writes, args.queries_per_write, hot).await?;
        self.results.fan_outs.push(mid);

        if n > fanout {
            self.open_subscribed(n - fanout, args.batch, hot, format!("open {} more on the same key", thousands(n - fanout))).await?;
            let big = self.fan_out(format!("{} clients, same key", thousands(n)), 0..n, args.big_writes, 0, hot).await?;
            self.results.fan_outs.push(big);
            let rss = self.settled_rss().await?;
            self.remember_rss(format!("{} clients sharing one subscription (after the fan-out runs)", thousands(n)), n, rss, None);
        }
        self.clients.close_all();
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.drain_after_close();
        Ok(())
    }

    /// Events after the bench closed its own clients are expected; drop them.
    fn drain_after_close(&mut self) {
        while self.clients.received.try_recv().is_ok() {}
    }
}
