//! The function runtime boundary. Everything engine-specific (today QuickJS through
//! `rquickjs`) lives in `quickjs.rs`; the rest of the engine sees only these types:
//! an `Isolate` runs one execution against a `Host`, which answers the syscalls of
//! the Convex ABI. A V8 isolate would implement the same surface. `"use node"`
//! actions run in Node.js worker processes instead (`node/`), against the same `Host`.

mod node;
mod quickjs;

pub use node::{NodeConfig, NodePool, TooManyNodeActions};
pub use quickjs::Isolate;

use convect_bundler::NodeDependency;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Module sources of one deployment by canonical name.
pub type ModuleSources = Arc<HashMap<String, String>>;

/// The `"use node"` modules of one deployment, for the Node.js runtime.
#[derive(Debug, Clone, Default)]
pub struct NodeBundle {
    /// blake3 over the modules' paths and hashes and the dependencies: equal
    /// bundles share a key, so a worker can keep them on disk and loaded across
    /// deploys that leave them alone.
    pub key: String,
    /// Module sources by path (`dir/file.js`, `_deps/node/CHUNK.js`).
    pub sources: BTreeMap<String, String>,
    /// npm packages the modules import but do not contain (`convex.json`'s
    /// `node.externalPackages`), installed before the modules are loaded.
    pub dependencies: Vec<NodeDependency>,
}

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

    /// As Convex names the kind in messages.
    pub fn display_name(self) -> &'static str {
        match self {
            UdfKind::Query => "Query",
            UdfKind::Mutation => "Mutation",
            UdfKind::Action => "Action",
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
    /// Who the function runs for; the runtimes pass it on to their host.
    pub identity: CallerIdentity,
}

/// What `ctx.auth.getUserIdentity()` answers in an execution.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum CallerIdentity {
    #[default]
    Anonymous,
    /// A verified user's `UserIdentity` object.
    User(Arc<serde_json::Value>),
    /// Credentials were presented and refused (an HTTP action's `Authorization`
    /// header): asking who the caller is fails with this message.
    Refused(String),
}

impl CallerIdentity {
    /// `1.0/getUserIdentity`'s answer.
    pub fn answer(&self) -> SyscallResult {
        match self {
            CallerIdentity::Anonymous => Ok(serde_json::Value::Null),
            CallerIdentity::User(identity) => Ok((**identity).clone()),
            CallerIdentity::Refused(message) => Err(SyscallError::new(message.clone())),
        }
    }
}

impl Execution {
    /// What the shared `invoke` entry point (shared.js) needs besides the arguments.
    fn meta_json(&self) -> String {
        serde_json::json!({
            "requestId": self.request_id,
            "seed": self.seed as f64,
            "nowMs": self.now_ms,
            "env": &*self.env,
        })
        .to_string()
    }

    /// The failure of a QuickJS execution that ran out of time, in Convex's
    /// words for its V8 isolates (`maximum duration: 1s`, Rust's `Duration` Debug).
    fn isolate_timeout(&self) -> JsFailure {
        JsFailure::new(format!("Function execution timed out (maximum duration: {:?})", self.time_limit))
    }

    /// The failure of a Node.js action that ran out of time, in the words of
    /// Convex's Node.js executor (`maximum duration 600s`).
    fn node_timeout(&self) -> JsFailure {
        JsFailure::new(format!(
            "Action `{}` execution timed out (maximum duration {}s)",
            self.export,
            self.time_limit.as_secs_f64()
        ))
    }
}

/// Parses the JSON outcome that the shared `invoke` entry point (shared.js) resolves to.
fn parse_outcome(text: &str) -> Result<String, JsFailure> {
    #[derive(serde::Deserialize)]
    struct Outcome {
        ok: bool,
        value: Option<String>,
        message: Option<String>,
        data: Option<String>,
        #[serde(default)]
        stack: String,
    }
    let o: Outcome = serde_json::from_str(text).map_err(|e| JsFailure::new(format!("bad outcome from runtime: {e}")))?;
    if o.ok {
        return Ok(o.value.unwrap_or_else(|| "null".into()));
    }
    let data = o.data.and_then(|d| serde_json::from_str(&d).ok());
    Err(JsFailure { message: o.message.unwrap_or_else(|| "Uncaught Error".into()), data, stack: o.stack })
}

/// Why an execution failed.
#[derive(Debug, Clone, PartialEq)]
pub struct JsFailure {
    /// `Uncaught Error: <the error's message>`.
    pub message: String,
    /// `ConvexError` data, as convex-encoded JSON.
    pub data: Option<Json>,
    /// The thrown error's stack frames (`    at fn (dir/file.js:L:C)`, one a
    /// line, locations in generated module code), or empty. Kept apart from
    /// `message` so that only frames, never message text, are source-mapped.
    pub stack: String,
}

impl JsFailure {
    pub fn new(message: impl Into<String>) -> Self {
        JsFailure { message: message.into(), data: None, stack: String::new() }
    }
}

/// The message and its frames as the runtime reported them (not source-mapped).
impl std::fmt::Display for JsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.stack.as_str() {
            "" => f.write_str(&self.message),
            stack => write!(f, "{}\n{stack}", self.message),
        }
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

/// Delivers the result of an async syscall, possibly from another thread. Each
/// runtime decides where the result goes (an isolate's queue, a worker's socket).
pub struct Completion(Box<dyn FnOnce(SyscallResult) + Send>);

impl Completion {
    pub(crate) fn new(deliver: impl FnOnce(SyscallResult) + Send + 'static) -> Self {
        Completion(Box::new(deliver))
    }

    pub fn complete(self, result: SyscallResult) {
        (self.0)(result)
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
    /// `cronJobs().export()` JSON, for `crons.js`.
    #[serde(default)]
    pub crons: Option<String>,
    /// The default export of `auth.config.js` (`{ providers }`), as JSON.
    #[serde(default, rename = "authConfig")]
    pub auth_config: Option<String>,
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

/// The module path an import `specifier` names from module `importer`:
/// relative specifiers (`./_deps/A.js`, `../x.js`) are resolved against the
/// importer's folder, as the bundler emits them; others are module paths.
pub fn resolve_specifier(importer: &str, specifier: &str) -> String {
    if !specifier.starts_with("./") && !specifier.starts_with("../") {
        return specifier.to_owned();
    }
    let mut parts: Vec<&str> = importer.split('/').collect();
    parts.pop(); // the importer's own file name
    for segment in specifier.split('/') {
        match segment {
            "." | "" => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// Limits of one JavaScript heap.
pub const HEAP_LIMIT_BYTES: usize = 256 << 20;
