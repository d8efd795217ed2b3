//! `convect-bench`: measures Convect on this machine and records the figures in
//! BENCHMARKS.md. `convect-bench inserts` starts `target/release/convect serve`
//! on a fresh data directory, deploys `bench/fixture`, and times single-document
//! insert mutations through the full HTTP path at several client concurrencies,
//! beside raw rusqlite inserts with the same durability settings, in one run.
//! `convect-bench live` measures live queries over the WebSocket sync protocol:
//! write-to-subscriber latency at 1 to 10,000 subscribers beside HTTP round
//! trips, query re-executions per write, and server memory per connection and
//! per subscription. `convect-bench ecosystem` measures `"use node"` action
//! calls beside QuickJS ones, and deploys of a large CommonJS dependency.
//! `convect-bench files` measures file upload and download throughput beside
//! raw disk writes and reads, HTTP actions beside queries, and the time to the
//! first event of a streamed HTTP action response. `convect-bench scheduler`
//! measures a burst of scheduled functions all due at once: jobs/s, how late
//! each starts, and query latency while they run beside the idle server.
//! `convect-bench auth` measures users' token verifications/s in process, and
//! query latency over HTTP with a token beside the same query without one.

mod auth;
mod doc;
mod ecosystem;
mod files;
mod live;
mod live_report;
mod load;
mod machine;
mod plan;
mod rawsqlite;
mod report;
mod run;
mod scheduler;
mod server;
mod stats;
mod ws;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use plan::{Phase, Runner};
use run::BenchRun;
use server::Server;
use stats::Measurement;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Time limit of each phase (over all rounds); a phase that hits it reports what it completed.
const PHASE_DEADLINE: Duration = Duration::from_secs(30);
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
    /// Live queries over WebSocket: fan-out latency, executions per write, memory per connection
    Live(live::LiveArgs),
    /// Node.js action calls beside QuickJS ones; deploy time with a large CommonJS dependency
    Ecosystem(ecosystem::EcosystemArgs),
    /// File upload/download throughput beside raw disk I/O; HTTP actions beside queries; first SSE event
    Files(files::FilesArgs),
    /// A burst of scheduled functions due at once: jobs/s, lateness, query latency beside the idle server
    Scheduler(scheduler::SchedulerArgs),
    /// Users' token verifications/s in process; query latency with a token beside anonymous
    Auth(auth::AuthArgs),
}

#[derive(clap::Args)]
struct InsertsArgs {
    /// Mutations at concurrency 1 (and raw single-row commits)
    #[arg(long, default_value_t = 4_000)]
    sequential: usize,
    /// Mutations at each higher concurrency (and raw rows in batched commits)
    #[arg(long, default_value_t = 20_000)]
    concurrent: usize,
    /// Client concurrencies besides 1
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    concurrency: Vec<usize>,
    /// Rows per transaction of the batched raw SQLite run
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Rounds: each runs every phase on its share of the counts, so that all
    /// phases sample the same background load
    #[arg(long, default_value_t = 8)]
    rounds: usize,
    /// Print the figures without updating BENCHMARKS.md
    #[arg(long)]
    no_write: bool,
}

pub(crate) fn repo_root() -> PathBuf {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("bench/ is inside the repository");
    repo.canonicalize().unwrap_or_else(|_| repo.to_owned())
}


/// Copies the sources (not `_generated`) of `bench/<fixture>` into `dest`.
pub(crate) fn copy_fixture(repo: &Path, fixture: &str, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest)?;
    for entry in std::fs::read_dir(repo.join("bench").join(fixture))? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), dest.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The phases, in the order each round runs them: each raw SQLite phase just
/// before the HTTP phases it is compared with.
fn phases(args: &InsertsArgs) -> Vec<Phase> {
    let mut phases = vec![
        Phase::Raw { per_commit: 1, rows: args.sequential },
        Phase::Http { concurrency: 1, mutations: args.sequential },
        Phase::Raw { per_commit: args.batch, rows: args.concurrent },
    ];
    phases.extend(args.concurrency.iter().map(|&concurrency| Phase::Http { concurrency, mutations: args.concurrent }));
    phases
}

async fn run_phases(server: &Server, work: &Path, args: &InsertsArgs) -> Result<Vec<Measurement>> {
    let max = args.concurrency.iter().copied().chain([16]).max().unwrap_or(16);
    let mut runner = Runner::new(server, work, max)?;
    runner.warm_up(WARMUP).await?;
    runner.run(&phases(args), args.rounds.max(1), PHASE_DEADLINE).await
}

/// What the run measures, as Markdown for BENCHMARKS.md.
fn setup_text(args: &InsertsArgs) -> String {
    let c: Vec<String> = args.concurrency.iter().map(|c| c.to_string()).collect();
    format!(
        "
- **HTTP mutation**: a reqwest client with keep-alive connections posts `items:insert` to `/api/mutation` of \
  `convect serve` (embedded SQLite, WAL, `synchronous=FULL`). The function (`bench/fixture/items.ts`) validates \
  `{{n: v.number(), body: v.string()}}` (a 200-character body) and calls `ctx.db.insert` once; the server runs it \
  in QuickJS and answers only after the commit is durable. {seq} mutations one at a time (latency-bound: one fsync \
  per commit), then {conc} at each of {c} concurrent clients (concurrent mutations share one SQLite transaction: \
  group commit), after {WARMUP} unmeasured warm-up mutations. Latency is per request. The client runs on the same \
  machine and shares its CPUs.
- **raw SQLite**: rusqlite, same pragmas, same filesystem, same run: the same documents (a 20-byte random id, a \
  timestamp and the document's JSON, about 300 bytes) go into a table shaped like Convect's `documents` log. \
  {seq} rows with one transaction per row (what one mutation per commit must pay) and {conc} rows in transactions \
  of {batch} (what group commit amortises). Latency is per transaction. Convect writes more per document than this \
  floor: the document row, its `by_id` and `by_creation_time` index entries, and a `max_ts` row per transaction.
- **Scheduling**: the counts are split into {rounds} rounds; each round runs every row of the table once, in table \
  order, so that raw SQLite and the HTTP path see the same background load. Rates are inserts over the wall time \
  of the phase; CPU columns are average cores busy during the HTTP phases.",
        seq = report::thousands(args.sequential as f64),
        conc = report::thousands(args.concurrent as f64),
        c = c.join(" and "),
        batch = args.batch,
        rounds = args.rounds.max(1),
    )
}


async fn inserts(args: InsertsArgs) -> Result<()> {
    let run = BenchRun::start("bench-")?;
    let results = run.deployed("fixture", &[], async |server: &Server| run_phases(server, run.work(), &args).await).await?;
    let machine = run.machine();
    let figures = format!("{}\n{}", report::table(&results), report::interpretation(&results, &machine));
    run.publish(&figures, args.no_write, |path| report::write(path, &report::section(&machine, &results, &setup_text(&args))))
}

/// Raises this process's soft open-files limit to the hard limit (the server
/// started later inherits it) and checks that `needed` descriptors fit.
fn raise_open_files(needed: u64) -> Result<()> {
    let (soft, hard) = rlimit::Resource::NOFILE.get().context("reading RLIMIT_NOFILE")?;
    let raised = rlimit::increase_nofile_limit(hard).context("raising RLIMIT_NOFILE")?;
    println!("open-files limit: {soft} -> {raised} (hard limit {hard})");
    if raised < needed {
        bail!("{needed} open files are needed but the hard limit is {hard}: raise it (ulimit -Hn) or pass a smaller --clients");
    }
    Ok(())
}

async fn live_bench(args: live::LiveArgs) -> Result<()> {
    // Each client is one socket here and one in the server, plus files and listeners.
    raise_open_files(args.clients as u64 + 256)?;
    let run = BenchRun::start("bench-live-")?;
    let results = run.deployed("fixture", &[], async |server: &Server| live::run(server, &args).await).await?;
    let machine = run.machine();
    let figures = [
        live_report::latency_table(&results),
        live_report::baseline_table(&results),
        live_report::executions_table(&results),
        live_report::write_cost_table(&results),
        live_report::memory_table(&results),
        live_report::interpretation(&results, &args, &machine),
    ]
    .join("\n");
    run.publish(&figures, args.no_write, |path| {
        report::write_between(path, live_report::BEGIN, live_report::END, &live_report::section(&machine, &results, &args))
    })
}


async fn ecosystem_bench(args: ecosystem::EcosystemArgs) -> Result<()> {
    let run = BenchRun::start("bench-ecosystem-")?;
    let measure = async |server: &Server| ecosystem::run(&run.bin, server, run.work(), &args).await;
    let results = run.deployed("fixture-ecosystem", &[], measure).await?;
    let machine = run.machine();
    run.publish(&ecosystem::report(&results), args.no_write, |path| {
        report::write_between(path, ecosystem::BEGIN, ecosystem::END, &ecosystem::section(&machine, &results, &args))
    })
}

async fn files_bench(args: files::FilesArgs) -> Result<()> {
    let run = BenchRun::start("bench-files-")?;
    let results = run.deployed("fixture-files", &[], async |server: &Server| files::run(server, run.work(), &args).await).await?;
    let machine = run.machine();
    run.publish(&files::report(&results), args.no_write, |path| {
        report::write_between(path, files::BEGIN, files::END, &files::section(&machine, &results, &args))
    })
}

async fn scheduler_bench(args: scheduler::SchedulerArgs) -> Result<()> {
    let run = BenchRun::start("bench-scheduler-")?;
    let concurrency = args.scheduler_concurrency.to_string();
    let flags = ["--scheduler-concurrency", &concurrency];
    let results = run.deployed("fixture-scheduler", &flags, async |server: &Server| scheduler::run(server, &args).await).await?;
    let machine = run.machine();
    run.publish(&scheduler::report(&results), args.no_write, |path| {
        report::write_between(path, scheduler::BEGIN, scheduler::END, &scheduler::section(&machine, &results, &args))
    })
}

async fn auth_bench(args: auth::AuthArgs) -> Result<()> {
    let run = BenchRun::start("bench-auth-")?;
    // `bench/fixture-auth` reads its keys from a deployment variable, which
    // only a running server holds: `auth::run` sets it, then deploys.
    let measure = async |server: &Server| auth::run(&run.bin, server, run.work(), &args).await;
    let results = run.serving(&[], measure).await?;
    let machine = run.machine();
    run.publish(&auth::report(&results), args.no_write, |path| {
        report::write_between(path, auth::BEGIN, auth::END, &auth::section(&machine, &results, &args))
    })
}

/// Runs `bench` on a runtime of its own: one thread, or one per core.
fn block_on(multi_thread: bool, bench: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    let mut builder = if multi_thread { tokio::runtime::Builder::new_multi_thread() } else { tokio::runtime::Builder::new_current_thread() };
    builder.enable_all().build()?.block_on(bench)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Bench::Inserts(args) => block_on(false, inserts(args)),
        // Thousands of clients read their sockets in parallel, as separate browsers would.
        Bench::Live(args) => block_on(true, live_bench(args)),
        Bench::Ecosystem(args) => block_on(false, ecosystem_bench(args)),
        Bench::Files(args) => block_on(false, files_bench(args)),
        Bench::Scheduler(args) => block_on(false, scheduler_bench(args)),
        // One thread, so that verifications/s is what one core does.
        Bench::Auth(args) => block_on(false, auth_bench(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
