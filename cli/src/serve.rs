//! `convect serve`: opens the data directory, makes sure an admin key exists, and
//! serves the HTTP API until SIGINT/SIGTERM.

use anyhow::{Context, Result};
use clap::Args;
use convect_engine::env_vars::PublicUrls;
use convect_engine::file_storage::FileStorageOptions;
use convect_engine::scheduler::SchedulerOptions;
use convect_engine::server::{router, site_router, AppState};
use convect_engine::{Engine, RuntimeOptions, DEFAULT_ACTION_TIMEOUT};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Args)]
pub struct ServeArgs {
    /// Directory for the database and the admin key
    #[arg(long, default_value = ".convect")]
    data: PathBuf,
    /// Port of the API (clients, CLI)
    #[arg(long, default_value_t = 3210)]
    port: u16,
    /// Port for HTTP actions (served at its root; also under /http/ on the
    /// API port); default: the API port + 1
    #[arg(long)]
    site_port: Option<u16>,
    /// Address to bind
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Public URL of the API, as functions see it in CONVEX_CLOUD_URL (behind a
    /// proxy); default http://127.0.0.1:<port>
    #[arg(long, env = "CONVECT_CLOUD_URL")]
    cloud_url: Option<String>,
    /// Public URL of HTTP actions, as functions see it in CONVEX_SITE_URL;
    /// default http://127.0.0.1:<site-port>
    #[arg(long, env = "CONVECT_SITE_URL")]
    site_url: Option<String>,
    /// The Node.js binary for "use node" actions; default: `node` on PATH
    #[arg(long, env = "CONVECT_NODE")]
    node: Option<PathBuf>,
    /// Longest an action may run, in seconds (Convex: 10 minutes)
    #[arg(long, env = "CONVECT_ACTION_TIMEOUT", value_name = "SECS", default_value_t = DEFAULT_ACTION_TIMEOUT.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    action_timeout: u64,
    /// Idle Node.js workers kept warm for "use node" actions; default: the
    /// number of cores (at least 2). More run when more actions do.
    #[arg(long, env = "CONVECT_NODE_WARM_WORKERS", value_name = "N")]
    node_warm_workers: Option<usize>,
    /// "use node" actions running at once at most (each in a Node.js process
    /// of its own); more are refused with a "too many concurrent" error
    #[arg(long, env = "CONVECT_NODE_MAX_CONCURRENT", value_name = "N", default_value_t = RuntimeOptions::default().node_max_concurrent)]
    node_max_concurrent: usize,
    /// Largest file an upload URL or `ctx.storage.store` accepts, in bytes
    #[arg(long, env = "CONVECT_MAX_FILE_SIZE", value_name = "BYTES", default_value_t = FileStorageOptions::default().max_file_size)]
    max_file_size: u64,
    /// How long an upload URL from `generateUploadUrl` stays valid, in seconds
    #[arg(long, env = "CONVECT_UPLOAD_URL_TTL", value_name = "SECS", default_value_t = FileStorageOptions::default().upload_url_ttl.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..))]
    upload_url_ttl: u64,
    /// Scheduled functions running at once at most; due jobs beyond it wait
    /// their turn in scheduled order
    #[arg(long, env = "CONVECT_SCHEDULER_CONCURRENCY", value_name = "N", default_value_t = SchedulerOptions::default().concurrency,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    scheduler_concurrency: usize,
    /// Days finished scheduled functions stay in `_scheduled_functions`
    #[arg(long, env = "CONVECT_SCHEDULER_RETENTION_DAYS", value_name = "DAYS", default_value_t = 7)]
    scheduler_retention_days: u64,
}

/// Reads `<data>/admin_key`, creating it with a fresh random key on first start.
fn admin_key(data: &Path) -> Result<String> {
    let path = data.join("admin_key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_owned());
    }
    // ThreadRng is a CSPRNG seeded from the OS.
    let bytes: [u8; 32] = rand::random();
    let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    eprintln!("Generated a new admin key in {}", path.display());
    Ok(key)
}

impl ServeArgs {
    /// Serving a project's own data directory on loopback, with `serve`'s
    /// defaults and environment variables (`CONVECT_NODE`, `CONVECT_ACTION_TIMEOUT`, ...).
    pub fn local(data: PathBuf, port: u16) -> Result<ServeArgs> {
        use clap::FromArgMatches;
        let matches = ServeArgs::augment_args(clap::Command::new("serve")).try_get_matches_from(["serve"])?;
        let mut args = ServeArgs::from_arg_matches(&matches)?;
        args.data = data;
        args.port = port;
        Ok(args)
    }

    fn runtime_options(&self) -> RuntimeOptions {
        let defaults = RuntimeOptions::default();
        RuntimeOptions {
            node: self.node.clone(),
            node_warm_workers: self.node_warm_workers.unwrap_or(defaults.node_warm_workers),
            node_max_concurrent: self.node_max_concurrent,
            action_timeout: Duration::from_secs(self.action_timeout),
            files: FileStorageOptions { max_file_size: self.max_file_size, upload_url_ttl: Duration::from_secs(self.upload_url_ttl) },
            scheduler: SchedulerOptions {
                concurrency: self.scheduler_concurrency,
                retention: Duration::from_secs(self.scheduler_retention_days * 24 * 3600),
            },
        }
    }

    fn site_port(&self) -> u16 {
        self.site_port.unwrap_or(self.port.saturating_add(1))
    }

    fn public_urls(&self) -> PublicUrls {
        let local = |port: u16| format!("http://127.0.0.1:{port}");
        PublicUrls {
            cloud: self.cloud_url.clone().unwrap_or_else(|| local(self.port)),
            site: self.site_url.clone().unwrap_or_else(|| local(self.site_port())),
        }
    }
}

/// A server running in this process.
pub struct Server {
    pub url: String,
    pub admin_key: String,
    pub finished: tokio::task::JoinHandle<Result<()>>,
}

pub async fn start(args: ServeArgs) -> Result<Server> {
    std::fs::create_dir_all(&args.data).with_context(|| format!("creating {}", args.data.display()))?;
    let admin_key = admin_key(&args.data)?;
    let engine = Engine::open(&args.data.join("convect.sqlite3"), args.public_urls(), args.runtime_options())?;
    let state = AppState::new(engine, admin_key.clone());
    let addr = format!("{}:{}", args.host, args.port);
    let site_addr = format!("{}:{}", args.host, args.site_port());
    let api = serve_on(&addr, router(state.clone()))?;
    let site = serve_on(&site_addr, site_router(state))?;
    println!("Convect is serving {} on http://{addr} (HTTP actions on http://{site_addr})", args.data.display());
    let finished = tokio::spawn(async move {
        let (api, site) = tokio::try_join!(api, site)?;
        api.and(site)
    });
    Ok(Server { url: format!("http://{addr}"), admin_key, finished })
}

/// Binds `addr` now (so that a taken port fails `start`) and serves `app`
/// there until shutdown.
fn serve_on(addr: &str, app: axum::Router) -> Result<tokio::task::JoinHandle<Result<()>>> {
    let listener = listen(addr).with_context(|| format!("binding {addr}"))?;
    // Small protocol frames must not wait for delayed ACKs (Nagle).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    Ok(tokio::spawn(async move {
        axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
        Ok(())
    }))
}

/// Pending connections the kernel queues for us; the default 128 overflows when
/// thousands of clients reconnect at once after a restart.
const LISTEN_BACKLOG: u32 = 4096;

fn listen(addr: &str) -> Result<tokio::net::TcpListener> {
    let addr: std::net::SocketAddr = addr.parse().with_context(|| format!("invalid address {addr}"))?;
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(LISTEN_BACKLOG)?)
}

pub async fn run(args: ServeArgs) -> Result<()> {
    let server = start(args).await?;
    println!("Admin key: {}", server.admin_key);
    server.finished.await?
}

async fn shutdown() {
    let term = async {
        #[cfg(unix)]
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
