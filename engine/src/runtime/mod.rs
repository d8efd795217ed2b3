//! The function runtime boundary. Everything engine-specific (today QuickJS through
//! `rquickjs`) lives in `quickjs.rs`; the rest of the engine sees only these types:
//! an `Isolate` runs one execution against a `Host`, which answers the syscalls of
//! the Convex ABI. A V8 isolate would implement the same surface.

mod quickjs;

pub use quickjs::Isolate;

use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Module sources of one deployment by canonical name.
pub type ModuleSources = Arc<HashMap<String, String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UdfKind {
    Query,
    Mutation,
    Action,
}

impl UdfKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UdfKind::Query => "query",
            UdfKind::Mutation => "mutation",
            UdfKind::Action => "action",
        }
    }
}

/// One function execution.
#[derive(Debug, Clone)]
pub struct Execution {
    pub kind: UdfKind,
    pub module: String,
    pub export: String,
    pub args_json: String,
    pub request_id: String,
    pub seed: u64,
    pub now_ms: f64,
    /// Budget of user-code time; time spent in syscalls does not count.
    pub time_limit: Duration,
    pub env: Arc<BTreeMap<String, String>>,
}

/// Why an execution failed.
#[derive(Debug, Clone, PartialEq)]
pub struct JsFailure {
    pub message: String,
    /// `ConvexError` data, as convex-encoded JSON.
    pub data: Option<Json>,
}

impl JsFailure {
    pub fn new(message: impl Into<String>) -> Self {
        JsFailure { message: message.into(), data: None }
    }
}

#[derive(Debug)]
pub struct ExecOutcome {
    /// The JSON-encoded return value.
    pub result: Result<String, JsFailure>,
    pub log_lines: Vec<String>,
}

/// An error a syscall reports back to JavaScript.
#[derive(Debug, Clone)]
pub struct SyscallError {
    pub message: String,
    pub data: Option<Json>,
}

impl SyscallError {
    pub fn new(message: impl Into<String>) -> Self {
        SyscallError { message: message.into(), data: None }
    }
}

pub type SyscallResult = Result<Json, SyscallError>;

/// Delivers the result of an async syscall, possibly from another thread.
pub struct Completion {
    id: u64,
    tx: mpsc::Sender<(u64, SyscallResult)>,
}

impl Completion {
    pub fn complete(self, result: SyscallResult) {
        let _ = self.tx.send((self.id, result));
    }
}

/// The engine side of the syscall ABI for one execution.
pub trait Host {
    fn syscall(&mut self, op: &str, args: Json) -> SyscallResult;
    /// Starts an async syscall; the host completes it now or later.
    fn async_syscall(&mut self, op: &str, args: Json, done: Completion);
}

/// What a module exports, as analysed at deploy time.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ModuleAnalysis {
    pub functions: Vec<FunctionAnalysis>,
    /// `defineSchema(...).export()` JSON, for `schema.js`.
    pub schema: Option<String>,
    #[serde(rename = "isRouter")]
    pub is_router: bool,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FunctionAnalysis {
    pub name: String,
    pub kind: String,
    pub visibility: String,
    pub args: Option<String>,
    pub returns: Option<String>,
}

/// Limits of one JavaScript heap.
pub const HEAP_LIMIT_BYTES: usize = 256 << 20;
