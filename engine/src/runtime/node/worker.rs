//! One Node.js worker process and the frames it exchanges with the engine: JSON,
//! one per line, over a Unix socket that the child sees as fd 3.

use super::NodeError;
use crate::runtime::{Completion, Host, SyscallError, SyscallResult};
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// V8's old-generation limit per worker.
const HEAP_LIMIT_MIB: usize = 512;
/// Lines of stderr kept to explain a crash.
const STDERR_TAIL: usize = 20;

/// Engine -> worker.
#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(super) enum Request<'a> {
    Run {
        call: u64,
        dir: &'a Path,
        module: &'a str,
        export: &'a str,
        #[serde(rename = "argsJson")]
        args_json: &'a str,
        meta: &'a str,
    },
    Analyze { call: u64, dir: &'a Path, modules: &'a [String], env: &'a BTreeMap<String, String> },
}

impl Request<'_> {
    /// The execution this request starts; the worker's frames about it carry this id.
    fn call(&self) -> u64 {
        match self {
            Request::Run { call, .. } | Request::Analyze { call, .. } => *call,
        }
    }
}

/// Engine -> worker: the result of an async syscall.
#[derive(serde::Serialize)]
struct SyscallReply {
    r#type: &'static str,
    id: u64,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Json>,
}

impl SyscallReply {
    fn new(id: u64, result: SyscallResult) -> Self {
        let (ok, value, message, data) = match result {
            Ok(json) => (true, Some(json.to_string()), None, None),
            Err(e) => (false, None, Some(e.message), e.data),
        };
        SyscallReply { r#type: "result", id, ok, value, message, data }
    }
}

/// Worker -> engine. `call` says which execution a frame belongs to: a promise left
/// running by an earlier execution may still log or make syscalls.
#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Frame {
    Log { call: u64, line: String },
    Syscall { call: u64, id: u64, op: String, args: String },
    /// `exiting`: the worker ends after this frame (an error nothing caught left
    /// it in an unknown state), so it must not be handed out again.
    Done {
        call: u64,
        outcome: String,
        #[serde(default)]
        exiting: bool,
    },
}

/// A host for analysis: module top-level code has no business making syscalls.
pub(super) struct NoSyscalls;

impl Host for NoSyscalls {
    fn syscall(&mut self, op: &str, _args: Json) -> SyscallResult {
        Err(SyscallError::new(format!("`{op}` cannot be called while modules load")))
    }

    fn async_syscall(&mut self, op: &str, args: Json, done: Completion) {
        done.complete(self.syscall(op, args));
    }
}

pub(super) struct Worker {
    id: u64,
    child: tokio::process::Child,
    frames: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    /// Keys of the bundles this worker has imported (Node keeps them loaded).
    bundles: HashSet<String>,
    /// Said it is ending; see `Frame::Done`.
    exiting: bool,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_done: JoinHandle<()>,
}

impl Worker {
    pub(super) fn spawn(node: Option<&Path>, script: &Path, cwd: &Path, id: u64) -> Result<Worker, NodeError> {
        let node = resolve_node(node)?;
        let (parent, child_end) = std::os::unix::net::UnixStream::pair()?;
        let mut cmd = tokio::process::Command::new(&node);
        cmd.arg(format!("--max-old-space-size={HEAP_LIMIT_MIB}"))
            .arg(script)
            .current_dir(cwd)
            // The server's own environment (keys, tokens) is not the deployment's.
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let fd = child_end.as_raw_fd();
        // SAFETY: between fork and exec only async-signal-safe calls (dup2, fcntl).
        unsafe {
            cmd.pre_exec(move || channel_as_fd3(fd));
        }
        let mut child = cmd.spawn().map_err(|source| NodeError::Spawn { node: node.display().to_string(), source })?;
        drop(child_end);
        parent.set_nonblocking(true)?;
        let (read, writer) = tokio::net::UnixStream::from_std(parent)?.into_split();
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        tokio::spawn(forward(stdout, id, None));
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let stderr_done = tokio::spawn(forward(stderr, id, Some(stderr_tail.clone())));
        tracing::debug!(worker = id, node = %node.display(), "started a Node.js worker");
        Ok(Worker {
            id,
            child,
            frames: BufReader::new(read).lines(),
            writer,
            bundles: HashSet::new(),
            exiting: false,
            stderr_tail,
            stderr_done,
        })
    }

    pub(super) fn bundles(&self) -> usize {
        self.bundles.len()
    }

    pub(super) fn has_bundle(&self, key: &str) -> bool {
        self.bundles.contains(key)
    }

    pub(super) fn exiting(&self) -> bool {
        self.exiting
    }

    /// Whether the process has ended (or can no longer be waited for).
    pub(super) fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `request` and serves the worker's syscalls through `host` until it
    /// reports the request's outcome (the JSON of shared.js's `invoke`).
    pub(super) async fn call<H: Host + Send>(
        &mut self,
        bundle: &str,
        request: &Request<'_>,
        host: &mut H,
        logs: &mut Vec<String>,
    ) -> Result<String, NodeError> {
        self.bundles.insert(bundle.to_owned());
        let call = request.call();
        self.send(request).await?;
        let (tx, mut completions) = mpsc::unbounded_channel::<(u64, SyscallResult)>();
        loop {
            tokio::select! {
                line = self.frames.next_line() => {
                    // A reset is the worker dying as surely as an end of stream.
                    let Ok(Some(line)) = line else { return Err(self.exited().await) };
                    match serde_json::from_str::<Frame>(&line)? {
                        Frame::Done { call: c, outcome, exiting } if c == call => {
                            self.exiting = exiting;
                            return Ok(outcome);
                        }
                        Frame::Log { call: c, line } if c == call => logs.push(line),
                        Frame::Syscall { call: c, id, op, args } if c == call => {
                            let tx = tx.clone();
                            let done = Completion::new(move |result| {
                                let _ = tx.send((id, result));
                            });
                            match serde_json::from_str(&args) {
                                Ok(args) => host.async_syscall(&op, args, done),
                                Err(e) => done.complete(Err(SyscallError::new(format!("{op}: arguments are not JSON: {e}")))),
                            }
                        }
                        Frame::Syscall { id, op, .. } => {
                            let finished = SyscallError::new(format!("{op} was called after its action finished; await every call inside the action."));
                            self.send(&SyscallReply::new(id, Err(finished))).await?;
                        }
                        Frame::Log { line, .. } => tracing::info!(target: "convect::node", worker = self.id, "{line}"),
                        Frame::Done { call: c, .. } => tracing::warn!(worker = self.id, call = c, "outcome of a finished execution"),
                    }
                }
                Some((id, result)) = completions.recv() => self.send(&SyscallReply::new(id, result)).await?,
            }
        }
    }

    pub(super) async fn kill(mut self) {
        if let Err(e) = self.child.kill().await {
            tracing::warn!(worker = self.id, error = %e, "could not kill a Node.js worker");
        }
    }

    async fn send(&mut self, frame: &impl serde::Serialize) -> Result<(), NodeError> {
        let mut line = serde_json::to_vec(frame)?;
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        Ok(())
    }

    /// The worker closed its channel: explains how it ended.
    async fn exited(&mut self) -> NodeError {
        let status = match self.child.wait().await {
            Ok(s) => s.to_string(),
            Err(e) => format!("its status is unknown: {e}"),
        };
        // The rest of stderr arrives once the process is gone.
        let _ = (&mut self.stderr_done).await;
        let tail: Vec<String> = self.stderr_tail.lock().expect("stderr tail poisoned").drain(..).collect();
        let stderr = if tail.is_empty() { String::new() } else { format!("; its last output:\n{}", tail.join("\n")) };
        NodeError::Exited { status, stderr }
    }
}

/// Makes the child's end of the socket its fd 3, inheritable across exec.
fn channel_as_fd3(fd: i32) -> std::io::Result<()> {
    let ok = if fd == 3 {
        // dup2 onto itself would keep close-on-exec set.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) != -1 }
    } else {
        unsafe { libc::dup2(fd, 3) != -1 }
    };
    if ok {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `node` as configured (a path, or a name looked up on PATH), else `node` on
/// PATH. Resolved here because the child's environment is cleared, so the spawn
/// itself would not search PATH.
pub(super) fn resolve_node(node: Option<&Path>) -> Result<PathBuf, NodeError> {
    let configured = node.is_some();
    let node = node.unwrap_or(Path::new("node"));
    if node.components().count() > 1 {
        return if node.is_file() {
            Ok(node.to_owned())
        } else {
            Err(NodeError::Missing(format!("{} (from --node / CONVECT_NODE) does not exist", node.display())))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(node)).find(|candidate| candidate.is_file()).ok_or_else(|| {
        let from = if configured { " (from --node / CONVECT_NODE)" } else { "" };
        NodeError::Missing(format!("`{}`{from} was not found on PATH", node.display()))
    })
}

/// Logs a worker's stdout or stderr line by line; keeps stderr's last lines.
async fn forward(stream: impl AsyncRead + Unpin, worker: u64, tail: Option<Arc<Mutex<VecDeque<String>>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match &tail {
            None => tracing::info!(target: "convect::node", worker, "{line}"),
            Some(tail) => {
                tracing::warn!(target: "convect::node", worker, "{line}");
                let mut tail = tail.lock().expect("stderr tail poisoned");
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    }
}
