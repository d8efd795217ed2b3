//! Convect's engine: storage, transactions, the committer, the function runtime and
//! the HTTP server. Data flows request -> `udf` (function call) -> `runtime`
//! (QuickJS isolate) -> `txn` (snapshot reads, write log) -> `committer` (OCC
//! validation, timestamps, group commit) -> `storage` (SQLite). See ARCHITECTURE.md.

pub mod catalog;
pub mod committer;
pub mod deploy;
pub mod deployment;
pub mod auth;
pub mod engine;
pub mod env_vars;
pub mod file_storage;
pub mod http_actions;
pub mod import;
pub mod query;
pub mod runtime;
pub mod scheduler;
pub mod server;
pub mod storage;
pub mod sync;
mod system_txn;
pub mod txn;
pub mod types;
pub mod udf;

pub use engine::{Engine, RuntimeOptions, DEFAULT_ACTION_TIMEOUT};
