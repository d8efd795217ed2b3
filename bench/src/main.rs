//! `convect-bench`: measures Convect on this machine and records the figures in
//! BENCHMARKS.md. `convect-bench inserts` starts `target/release/convect serve`
//! on a fresh data directory, deploys `bench/fixture`, and times single-document
//! insert mutations through the full HTTP path at several client concurrencies,
//! beside raw rusqlite inserts with the same durability settings, in one run.

mod doc;
mod load;
mod machine;
mod rawsqlite;
mod report;
mod server;
mod stats;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use server::Server;
use stats::Measurement;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const HTTP: &str = "HTTP mutation";
pub const RAW: &str = "raw SQLite";

/// Time limit of each phase; a phase that hits it reports what it completed.
const PHASE_DEADLINE: Duration = Duration::from_secs(40);
/// Unmeasured mutations before the first phase (connections, caches).
const WARMUP: usize = 200;

#[derive(Parser)]
#[command(name = "convect-bench", about = "Benchmarks Convect against raw SQLite on this machine")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Single-document insert mutations/s over HTTP, and raw SQLite inserts/s
    Inserts(InsertsArgs),
}

#[derive(clap::Args)]
struct InsertsArgs {
    /// Mutations at concurrency 1 (and raw single-row commits)
    #[arg(long, default_value_t = 2_000)]
    sequential: usize,
    /// Mutations at each higher concurrency (and raw rows in batched commits)
    #[arg(long, default_value_t = 10_000)]
    concurrent: usize,
    /// Client concurrencies besides 1
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    concurrency: Vec<usize>,
    /// Rows per transaction of the batched raw SQLite run
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Print the figures without updating BENCHMARKS.md
    #[arg(long)]
    no_write: bool,
}

/// The `load` column of an HTTP row.
pub fn shape_of(concurrency: usize) -> String {
    match concurrency {
        1 => "1 at a time".into(),
        c => format!("{c} concurrent"),
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ is inside the repository").to_owned()
}

fn convect_bin(repo: &Path) -> Result<PathBuf> {
    let bin = std::env::var_os("CONVECT_BIN").map_or_else(|| repo.join("target/release/convect"), PathBuf::from);
    if !bin.is_file() {
        bail!("{} not found: run `cargo build --release -p convect-cli` first, or set CONVECT_BIN", bin.display());
    }
    Ok(bin)
}

/// Copies the fixture's sources (not `_generated`) into `dest`.
fn copy_fixture(repo: &Path, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(repo.join("bench/fixture"))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), dest.join(entry.file_name()))?;
        }
    }
    Ok(())
}

fn raw_phases(work: &Path, args: &InsertsArgs) -> Result<Vec<Measurement>> {
    Ok(vec![
        rawsqlite::run(&work.join("raw-1.sqlite3"), args.sequential, 1, PHASE_DEADLINE)?,
        rawsqlite::run(&work.join("raw-batch.sqlite3"), args.concurrent, args.batch, PHASE_DEADLINE)?,
    ])
}

/// Runs one HTTP phase, with the CPU the server and this process used meanwhile.
async fn http_phase(server: &Server, client: &reqwest::Client, load: load::Load) -> Measurement {
    let server_pid = server.pid().map_or_else(|| "0".into(), |p| p.to_string());
    let cpu = || (machine::cpu_time(&server_pid), machine::cpu_time("self"));
    let before = cpu();
    let shape = shape_of(load.concurrency);
    let outcome = load::run(client, &server.url, load).await;
    let after = cpu();
    if let Some(e) = &outcome.first_error {
        eprintln!("{HTTP} ({shape}): {} failed, first error: {e}", outcome.errors);
    }
    let cores = |a: Option<Duration>, b: Option<Duration>| Some((b? - a?).as_secs_f64() / outcome.elapsed.as_secs_f64());
    let mut m = Measurement::new(HTTP, shape, outcome.latencies.len(), outcome.elapsed, outcome.latencies);
    m.errors = outcome.errors;
    m.server_cpu = cores(before.0, after.0);
    m.client_cpu = cores(before.1, after.1);
    m
}

/// Warms up, then runs every HTTP phase in order.
async fn http_phases(server: &Server, args: &InsertsArgs) -> Result<Vec<Measurement>> {
    let max = args.concurrency.iter().copied().chain([1]).max().unwrap_or(1);
    let client = load::client(max)?;
    let warm = load::Load { concurrency: 16.min(max), mutations: WARMUP, deadline: PHASE_DEADLINE, first: 0 };
    let warm = load::run(&client, &server.url, warm).await;
    if let Some(e) = warm.first_error {
        bail!("warm-up mutations failed ({} of {WARMUP}): {e}", warm.errors);
    }
    let mut first = WARMUP;
    let mut results = Vec::new();
    for c in std::iter::once(1).chain(args.concurrency.iter().copied()) {
        let mutations = if c == 1 { args.sequential } else { args.concurrent };
        let load = load::Load { concurrency: c, mutations, deadline: PHASE_DEADLINE, first };
        results.push(http_phase(server, &client, load).await);
        first += mutations;
    }
    Ok(results)
}

/// Starts and prepares the server, measures, and stops it (also on error).
async fn measure_http(bin: &Path, repo: &Path, work: &Path, args: &InsertsArgs) -> Result<Vec<Measurement>> {
    let functions = work.join("convex");
    copy_fixture(repo, &functions)?;
    let server = Server::start(bin, &work.join("data")).await?;
    let results = match server.deploy(bin, &functions).await {
        Ok(()) => http_phases(&server, args).await,
        Err(e) => Err(e),
    };
    if results.is_err() {
        eprintln!("server output (last lines):\n{}", server.log_tail());
    }
    server.stop().await?;
    results
}

fn setup_text(args: &InsertsArgs) -> String {
    let c: Vec<String> = args.concurrency.iter().map(|c| c.to_string()).collect();
    format!(
        "Single-document insert mutations per second through the full HTTP path: \
         a reqwest client with keep-alive connections posts `items:insert` \
         (`bench/fixture/items.ts`: an args validator `{{n: v.number(), body: v.string()}}` with a 200-character body, \
         one `ctx.db.insert`) to `/api/mutation` of `convect serve` (embedded SQLite, WAL, `synchronous=FULL`), \
         which runs the function in QuickJS and acknowledges only after the commit is durable. \
         {} mutations one at a time (latency-bound: one fsync per commit), then {} at each of {} concurrent clients \
         (concurrent mutations share one SQLite transaction: group commit), after {WARMUP} unmeasured warm-up mutations. \
         Latency is per request. The client runs on the same machine, so the two share its CPUs. \
         In the same run, on the same filesystem, raw rusqlite inserts the same documents (a 20-byte random id, a timestamp \
         and the document's JSON, ~320 bytes) into a table shaped like Convect's `documents` log, with the same pragmas: \
         {} rows with one transaction per row (what one mutation per commit must pay) and {} rows in transactions of {} \
         (what group commit amortises); latency there is per transaction. Convect writes more per document than this floor: \
         the document row plus its `by_id` and `by_creation_time` index entries, and a `max_ts` row per transaction.",
        args.sequential,
        args.concurrent,
        c.join(" and "),
        args.sequential,
        args.concurrent,
        args.batch,
    )
}

async fn inserts(args: InsertsArgs) -> Result<()> {
    let repo = repo_root();
    let bin = convect_bin(&repo)?;
    let tmp = repo.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    // Inside the repository so that the bundler finds node_modules/convex.
    let work = tempfile::Builder::new().prefix("bench-").tempdir_in(&tmp)?;
    let started = Instant::now();
    let mut results = raw_phases(work.path(), &args).context("raw SQLite benchmark")?;
    results.splice(0..0, measure_http(&bin, &repo, work.path(), &args).await.context("HTTP benchmark")?);
    let machine = machine::Machine::detect(&repo, work.path());
    println!("{}", report::table(&results));
    println!("{}", report::interpretation(&results));
    println!("(total {:.0} s)", started.elapsed().as_secs_f64());
    if !args.no_write {
        let path = repo.join("BENCHMARKS.md");
        report::write(&path, &report::section(&machine, &results, &setup_text(&args)))?;
        println!("updated {}", path.display());
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cli.command {
        Bench::Inserts(args) => runtime.block_on(inserts(args)),
    }
}
