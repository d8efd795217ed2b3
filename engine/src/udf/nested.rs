//! `ctx.runQuery`/`ctx.runMutation` inside queries and mutations (`1.0/runUdf`):
//! the called function runs in the caller's transaction, in the same isolate, as
//! a sub-transaction. It sees the caller's writes and the caller sees its
//! writes, unless it fails: then its writes are undone and its error is thrown
//! in the caller, which may catch it and go on.
//!
//! The isolate drives the call (prelude.js imports the module and invokes the
//! export); this host side resolves and checks it (`start`) and settles it
//! (`finish`), keeping a savepoint of the write log per level.

use super::{check_returns, decode_args};
use crate::deployment::{Deployment, FunctionMeta};
use crate::runtime::{SyscallError, SyscallResult, UdfKind};
use crate::txn::{Transaction, WriteLog};
use serde_json::{json, Value as Json};
use std::sync::Arc;

/// How deep calls may nest; a runaway recursion fails clearly instead of
/// exhausting the stack.
const MAX_DEPTH: usize = 16;

/// The calls in progress of one execution, innermost last.
pub struct NestedCalls {
    deployment: Arc<Deployment>,
    stack: Vec<Level>,
}

struct Level {
    path: String,
    function: FunctionMeta,
    savepoint: WriteLog,
}

fn fail<T>(message: impl Into<String>) -> Result<T, SyscallError> {
    Err(SyscallError::new(message))
}

impl NestedCalls {
    pub fn new(deployment: Arc<Deployment>) -> Self {
        NestedCalls { deployment, stack: Vec::new() }
    }

    /// Resolves and checks a call; answers what the isolate must invoke.
    pub fn start(&mut self, txn: &Transaction, writable: bool, args: &Json) -> SyscallResult {
        let Some(path) = args["name"].as_str() else {
            return fail("Calling component functions and function handles is not supported by Convect yet");
        };
        let expected = match args["udfType"].as_str() {
            Some("query" | "snapshotQuery") => UdfKind::Query,
            Some("mutation") if writable => UdfKind::Mutation,
            Some("mutation") => return fail("ctx.runMutation cannot be called from a query; only from a mutation or an action."),
            other => return fail(format!("Invalid udfType {other:?} for ctx.runQuery/ctx.runMutation")),
        };
        if self.stack.len() >= MAX_DEPTH {
            return fail(format!("ctx.runQuery/ctx.runMutation nested more than {MAX_DEPTH} levels deep"));
        }
        let Some(function) = self.deployment.function(path).cloned() else {
            return fail(format!("Could not find function for '{path}'. Did you forget to run `npx convex dev`?"));
        };
        if function.kind != expected {
            return fail(format!(
                "Trying to execute {path} as {}, but it is defined as {}.",
                expected.as_str(),
                function.kind.as_str()
            ));
        }
        let call_args = decode_args(&function, path, &args["args"], &txn.catalog()).map_err(SyscallError::from)?;
        let invoke = json!({ "module": function.module, "export": function.export, "kind": function.kind.as_str(), "args": call_args });
        self.stack.push(Level { path: path.to_owned(), function, savepoint: txn.writes.clone() });
        Ok(invoke)
    }

    /// Settles the innermost call: with a `value`, its checked return value; without
    /// one (it threw), its writes are undone.
    pub fn finish(&mut self, txn: &mut Transaction, args: &Json) -> SyscallResult {
        let Some(level) = self.stack.pop() else { return fail("no ctx.runQuery/ctx.runMutation call is in progress") };
        let Some(json) = args["value"].as_str() else {
            txn.writes = level.savepoint;
            return Ok(Json::Null);
        };
        let checked = check_returns(&level.function, &level.path, json, &txn.catalog());
        if checked.is_err() {
            txn.writes = level.savepoint;
        }
        checked.map_err(SyscallError::from)
    }
}
