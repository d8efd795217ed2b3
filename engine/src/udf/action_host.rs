//! `ActionHost`: the syscalls of actions. Actions are not transactional: each
//! `runQuery`/`runMutation`/`runAction` is its own call into the engine, and
//! `fetch` and timers are real, completing on the tokio runtime.

use super::syscalls::job_id_arg;
use super::{storage_syscalls, CallError, Caller};
use crate::scheduler::{jobs, schedule_request, ScheduleBudget, ScheduleRequest};
use crate::udf::now_ms;
use crate::engine::Engine;
use crate::http_actions::stream::{is_stream_op, ResponseSink};
use crate::runtime::{CallerIdentity, Completion, Host, SyscallError, SyscallResult, UdfKind};
use serde_json::{json, Value as Json};
use std::time::Duration;

/// Largest response body `fetch` reads into memory.
const MAX_FETCH_BODY: usize = 64 << 20;

pub struct ActionHost {
    pub engine: Engine,
    pub runtime: tokio::runtime::Handle,
    /// Where an HTTP action's streamed response goes.
    pub response: Option<ResponseSink>,
    /// Who the action runs for; its `runQuery`/`runMutation`/`runAction` run
    /// for the same caller.
    pub identity: CallerIdentity,
    pub scheduled: ScheduleBudget,
}

impl ActionHost {
    pub fn new(engine: Engine) -> Self {
        ActionHost { engine, runtime: tokio::runtime::Handle::current(), response: None, identity: CallerIdentity::Anonymous, scheduled: ScheduleBudget::default() }
    }
}

impl From<CallError> for SyscallError {
    fn from(e: CallError) -> Self {
        SyscallError { message: e.message, data: e.data }
    }
}

impl Host for ActionHost {
    fn syscall(&mut self, op: &str, _args: Json) -> SyscallResult {
        Err(SyscallError::new(format!("Unsupported syscall `{op}` in actions")))
    }

    fn async_syscall(&mut self, op: &str, args: Json, done: Completion) {
        if is_stream_op(op) {
            return match &mut self.response {
                Some(sink) => sink.syscall(op, args, done, &self.runtime),
                None => done.complete(Err(SyscallError::new("only an HTTP action's response can stream"))),
            };
        }
        let kind = match op {
            "1.0/actions/query" => Some(UdfKind::Query),
            "1.0/actions/mutation" => Some(UdfKind::Mutation),
            "1.0/actions/action" => Some(UdfKind::Action),
            _ => None,
        };
        let engine = self.engine.clone();
        match (kind, op) {
            (Some(kind), _) => {
                let identity = self.identity.clone();
                self.runtime.spawn(async move {
                    let Some(path) = args["name"].as_str() else {
                        return done.complete(Err(SyscallError::new("function references by handle are not supported by Convect yet")));
                    };
                    let result = engine.call(path, Some(kind), args["args"].clone(), Caller::Action, identity).await;
                    done.complete(result.value.map_err(SyscallError::from));
                });
            }
            (None, "convect/fetch") => {
                self.runtime.spawn(async move { done.complete(fetch(engine.http(), args).await) });
            }
            (None, "convect/sleep") => {
                let ms = args["ms"].as_f64().unwrap_or(0.0);
                self.runtime.spawn(async move {
                    tokio::time::sleep(Duration::from_secs_f64(ms / 1000.0)).await;
                    done.complete(Ok(Json::Null));
                });
            }
            (None, "1.0/getUserIdentity") => done.complete(self.identity.answer()),
            (None, "1.0/actions/schedule") => {
                let request = schedule_request(&engine.deployment(), &args).and_then(|r| self.scheduled.spend(&r).map(|()| r));
                match request {
                    Ok(request) => drop(self.runtime.spawn(async move { done.complete(schedule(&engine, request).await) })),
                    Err(message) => done.complete(Err(SyscallError::new(message))),
                }
            }
            (None, "1.0/actions/cancel_job") => {
                self.runtime.spawn(async move {
                    let canceled = match job_id_arg(&args) {
                        Ok(id) => engine.transact(|txn| jobs::cancel(txn, id, now_ms())).await.map(|_| Json::Null).map_err(SyscallError::from),
                        Err(e) => Err(e),
                    };
                    done.complete(canceled)
                });
            }
            (None, op) if storage_syscalls::is_storage_op(op) => {
                let op = op.to_owned();
                self.runtime.spawn(async move { done.complete(storage_syscalls::run(engine, &op, args).await) });
            }
            (None, _) => done.complete(Err(SyscallError::new(format!("Unsupported syscall `{op}` in actions")))),
        }
    }
}

/// `ctx.scheduler.runAfter`/`runAt` in an action: a transaction of its own.
async fn schedule(engine: &Engine, request: ScheduleRequest) -> SyscallResult {
    let (id, _) = engine.transact(|txn| jobs::insert(txn, &request.name, request.args.clone(), request.scheduled_ms)).await?;
    Ok(json!(id.encode()))
}

async fn fetch(client: reqwest::Client, args: Json) -> SyscallResult {
    let url = args["url"].as_str().unwrap_or_default();
    let method = reqwest::Method::from_bytes(args["method"].as_str().unwrap_or("GET").as_bytes())
        .map_err(|_| SyscallError::new("fetch: invalid method"))?;
    let mut req = client.request(method, url);
    for pair in args["headers"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (pair[0].as_str(), pair[1].as_str()) {
            req = req.header(k, v);
        }
    }
    if let Some(body) = args["body"].as_str() {
        req = req.body(body.to_owned());
    }
    let res = req.send().await.map_err(|e| SyscallError::new(format!("fetch to {url} failed: {e}")))?;
    let status = res.status();
    let final_url = res.url().to_string();
    let headers: Vec<(String, String)> =
        res.headers().iter().map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect();
    let bytes = res.bytes().await.map_err(|e| SyscallError::new(format!("fetch to {url}: reading body failed: {e}")))?;
    if bytes.len() > MAX_FETCH_BODY {
        return Err(SyscallError::new(format!("fetch to {url}: response body over {MAX_FETCH_BODY} bytes")));
    }
    Ok(json!({
        "status": status.as_u16(),
        "statusText": status.canonical_reason().unwrap_or(""),
        "headers": headers,
        "url": final_url,
        "body": String::from_utf8_lossy(&bytes),
    }))
}
