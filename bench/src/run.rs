//! What every benchmark does around its measurements: a work directory in
//! the repository, the release `convect`, a server with a fixture deployed,
//! the machine it ran on, and the printed and recorded figures.

use crate::copy_fixture;
use crate::machine::{self, Machine};
use crate::server::Server;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub struct BenchRun {
    pub repo: PathBuf,
    pub bin: PathBuf,
    pub work: tempfile::TempDir,
    started: Instant,
    load_before: String,
}

impl BenchRun {
    /// Starts a run whose work directory is named after `prefix`.
    pub fn start(prefix: &str) -> Result<BenchRun> {
        let repo = crate::repo_root();
        let bin = convect_bin(&repo)?;
        let work = work_dir(&repo, prefix)?;
        Ok(BenchRun { repo, bin, work, started: Instant::now(), load_before: machine::load_average() })
    }

    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// Runs `measure` against a server (started with `serve_flags`) that has
    /// `bench/<fixture>` deployed.
    pub async fn deployed<T>(&self, fixture: &str, serve_flags: &[&str], measure: impl AsyncFnOnce(&Server) -> Result<T>) -> Result<T> {
        let functions = self.work().join("convex");
        copy_fixture(&self.repo, fixture, &functions)?;
        self.serving(serve_flags, async |server: &Server| {
            server.deploy(&self.bin, &functions).await?;
            measure(server).await
        })
        .await
    }

    /// Runs `measure` against a server started with `serve_flags` and
    /// nothing deployed, stopping it afterwards (after printing its last
    /// output if `measure` failed).
    pub async fn serving<T>(&self, serve_flags: &[&str], measure: impl AsyncFnOnce(&Server) -> Result<T>) -> Result<T> {
        let server = Server::start(&self.bin, &self.work().join("data"), serve_flags).await?;
        let results = measure(&server).await;
        if results.is_err() {
            eprintln!("server output (last lines):\n{}", server.log_tail());
        }
        server.stop().await?;
        results.context("benchmark failed")
    }

    pub fn machine(&self) -> Machine {
        Machine::detect(&self.repo, self.work(), self.load_before.clone())
    }

    /// Prints the figures, and unless `no_write`, records them in
    /// BENCHMARKS.md with `write`.
    pub fn publish(&self, figures: &str, no_write: bool, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
        println!("{figures}");
        println!("(total {:.0} s)", self.started.elapsed().as_secs_f64());
        if !no_write {
            let path = self.repo.join("BENCHMARKS.md");
            write(&path)?;
            println!("updated {}", path.display());
        }
        Ok(())
    }
}

fn convect_bin(repo: &Path) -> Result<PathBuf> {
    let bin = std::env::var_os("CONVECT_BIN").map_or_else(|| repo.join("target/release/convect"), PathBuf::from);
    if !bin.is_file() {
        bail!("{} not found: run `cargo build --release -p convect-cli` first, or set CONVECT_BIN", bin.display());
    }
    Ok(bin)
}

/// A fresh directory for the server's data and the fixture, inside the
/// repository so that the bundler finds node_modules/convex.
fn work_dir(repo: &Path, prefix: &str) -> Result<tempfile::TempDir> {
    let tmp = repo.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    Ok(tempfile::Builder::new().prefix(prefix).tempdir_in(&tmp)?)
}

