//! A `convect serve` child process on a free local port with its own data
//! directory, plus the CLI steps (codegen, deploy) that prepare it. The server
//! is killed when the handle is dropped, so errors and panics cannot leak it.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const CLI_TIMEOUT: Duration = Duration::from_secs(180);

pub struct Server {
    child: Child,
    pub url: String,
    /// Where HTTP actions (`convex/http.ts`) are served at the root.
    pub site_url: String,
    pub admin_key: String,
    log: PathBuf,
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Runs a `convect` subcommand to completion, failing with its output if it fails.
pub async fn run_cli(bin: &Path, args: &[&str]) -> Result<()> {
    let out = tokio::time::timeout(CLI_TIMEOUT, Command::new(bin).args(args).kill_on_drop(true).output())
        .await
        .with_context(|| format!("convect {} timed out", args.join(" ")))??;
    if !out.status.success() {
        bail!(
            "convect {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl Server {
    /// Starts `bin serve` on `data`, with `flags` after the bench's own, and
    /// waits until it answers `GET /version`.
    pub async fn start(bin: &Path, data: &Path, flags: &[&str]) -> Result<Server> {
        std::fs::create_dir_all(data)?;
        let port = free_port()?;
        let site_port = free_port()?;
        let log = data.with_extension("log");
        let log_file = std::fs::File::create(&log)?;
        let child = Command::new(bin)
            .args(["serve", "--data"])
            .arg(data)
            .args(["--port", &port.to_string(), "--site-port", &site_port.to_string()])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            site_url: format!("http://127.0.0.1:{site_port}"),
            admin_key: String::new(),
            log,
        };
        server.wait_ready().await?;
        server.admin_key = std::fs::read_to_string(data.join("admin_key"))?.trim().to_owned();
        Ok(server)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let client = reqwest::Client::new();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited ({status}) before it was ready:\n{}", self.log_tail());
            }
            let probe = client.get(format!("{}/version", self.url)).send().await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                bail!("the server was not ready after {READY_TIMEOUT:?}:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Generates `_generated` for `functions` and deploys it to this server.
    pub async fn deploy(&self, bin: &Path, functions: &Path) -> Result<()> {
        let dir = functions.to_str().context("non-UTF-8 functions path")?;
        run_cli(bin, &["codegen", dir]).await?;
        run_cli(bin, &["deploy", dir, "--url", &self.url, "--admin-key", &self.admin_key]).await
    }

    /// The process id, for CPU accounting.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The last lines the server printed, for error reports.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Kills the server and reaps it.
    pub async fn stop(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }
}
