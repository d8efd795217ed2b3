//! The `convect` command: serve a deployment, push functions to it, call them, and
//! manage its configuration. Talks to servers over the same HTTP API the clients
//! use, with the admin key.

mod client;
mod dev;
mod import;
mod jobs;
mod project;
mod serve;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "convect", version, about = "A self-hosted, Convex-compatible reactive backend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the server is and how to authenticate as its admin.
#[derive(Args, Clone)]
pub struct Target {
    /// URL of the Convect server [default: from .convect/config.json, else http://127.0.0.1:3210]
    #[arg(long, env = "CONVECT_URL", global = true)]
    pub url: Option<String>,
    /// The deployment's admin key (printed by `convect serve`, kept in <data>/admin_key)
    #[arg(long, env = "CONVECT_ADMIN_KEY", global = true)]
    pub admin_key: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server on an embedded SQLite database
    Serve(serve::ServeArgs),
    /// Serve this project on .convect/, deploy its functions and seeds, and redeploy on change
    Dev {
        /// The functions folder [default: "functions" from convect.json, else "convex"]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 3210)]
        port: u16,
    },
    /// Bundle a functions folder and push it to a server
    Deploy {
        /// The functions folder
        #[arg(default_value = "convex")]
        dir: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Write _generated/{server,api,dataModel} for a functions folder
    Codegen {
        #[arg(default_value = "convex")]
        dir: PathBuf,
    },
    /// Call a function, e.g. `convect run advisors:list '{}'`
    Run {
        function: String,
        /// Arguments as a JSON object
        #[arg(default_value = "{}")]
        args: String,
        #[command(flatten)]
        target: Target,
    },
    /// Import documents from JSON, JSON Lines or CSV files into a table
    Import {
        #[arg(long)]
        table: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Update the document with the same value of FIELD instead of inserting
        #[arg(long, value_name = "FIELD")]
        upsert_by: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// List scheduled functions (the most recent 1,000) with their states
    Scheduled {
        #[command(flatten)]
        target: Target,
    },
    /// List cron jobs with their schedules and last and next runs
    Crons {
        #[command(flatten)]
        target: Target,
    },
    /// Manage the deployment's environment variables
    Env {
        #[command(subcommand)]
        action: EnvAction,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Subcommand)]
enum EnvAction {
    /// Set NAME to VALUE
    Set { name: String, value: String },
    /// Remove NAME
    Remove { name: String },
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CONVECT_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Dev { dir, port } => dev::run(dir, port).await,
            Command::Deploy { dir, target } => client::deploy(&dir, &target).await,
            Command::Codegen { dir } => {
                for path in convect_bundler::codegen(&dir)? {
                    println!("wrote {}", path.display());
                }
                Ok(())
            }
            Command::Run { function, args, target } => client::run(&function, &args, &target).await,
            Command::Import { table, files, upsert_by, target } => {
                import::import(&target, &table, &files, upsert_by.as_deref()).await
            }
            Command::Scheduled { target } => jobs::scheduled(&target).await,
            Command::Crons { target } => jobs::crons(&target).await,
            Command::Env { action, target } => match action {
                EnvAction::Set { name, value } => client::set_env(&target, &name, Some(&value)).await,
                EnvAction::Remove { name } => client::set_env(&target, &name, None).await,
            },
        }
    })
}
