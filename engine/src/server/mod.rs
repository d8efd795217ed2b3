//! The HTTP API, compatible with Convex's so that `ConvexHttpClient` works
//! unchanged: function calls under `/api/*`, plus Convect's admin routes
//! (deploy, environment variables) behind the admin key, and HTTP actions
//! under `/http/` (`site.rs`, which also serves the site port).

// Handlers return early with a ready `Response` as their error; boxing it would
// only add noise to every route.
#![allow(clippy::result_large_err)]

mod admin;
mod files;
mod site;

pub use site::site_router;

use crate::engine::Engine;
use crate::runtime::{CallerIdentity, UdfKind};
use crate::sync::protocol::encode_ts;
use crate::types::Timestamp;
use crate::udf::{client_message, CallError, CallResult, Caller, Journal};
use base64::Engine as _;
use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, State};
use crate::sync::{RequestLog, SyncHub};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value as Json_};
use std::sync::Arc;

/// Arguments may be up to 16 MiB encoded; leave room for JSON overhead.
const MAX_REQUEST_BYTES: usize = 24 << 20;
/// Deploy bodies carry module sources.
const MAX_DEPLOY_BYTES: usize = 256 << 20;

#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub admin_key: Arc<String>,
    pub hub: SyncHub,
    pub requests: RequestLog,
}

impl AppState {
    /// Must be called inside a tokio runtime: the sync hub, the file
    /// collector and the scheduler start tasks.
    pub fn new(engine: Engine, admin_key: String) -> AppState {
        let hub = SyncHub::start(engine.clone());
        crate::file_storage::start_collector(engine.clone());
        crate::scheduler::start_scheduler(engine.clone());
        AppState { engine, admin_key: Arc::new(admin_key), hub, requests: RequestLog::default() }
    }
}

/// Largest client message: a mutation with 16 MiB of arguments, plus framing.
const MAX_WS_MESSAGE: usize = 20 << 20;
/// The default 128 KiB read buffer is zero-filled on every read and dominated
/// the memory of an idle connection; client messages are small.
const WS_READ_BUFFER: usize = 8 << 10;

/// convex-js opens `/api/{its version}/sync`; clients built on the Rust `convex`
/// crate (such as the PyPI client) open `/api/sync` and send `Convex-Client`.
async fn sync(State(state): State<AppState>, version: Option<Path<String>>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    let header = headers.get("convex-client").and_then(|v| v.to_str().ok());
    let client = crate::sync::protocol::ClientVersion::of_request(version.as_ref().map(|Path(v)| v.as_str()), header);
    ws.max_message_size(MAX_WS_MESSAGE).read_buffer_size(WS_READ_BUFFER).on_upgrade(move |socket| {
        crate::sync::serve(socket, state.engine, state.hub, state.requests, state.admin_key, client)
    })
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/query", post(|s, h, b| call(s, h, b, Some(UdfKind::Query))))
        .route("/api/mutation", post(|s, h, b| call(s, h, b, Some(UdfKind::Mutation))))
        .route("/api/action", post(|s, h, b| call(s, h, b, Some(UdfKind::Action))))
        .route("/api/function", post(|s, h, b| call(s, h, b, None)))
        .route("/api/query_ts", post(query_ts))
        .route("/api/query_at_ts", post(query_at_ts))
        .route("/api/run/{*path}", post(run_by_path))
        .route("/api/update_environment_variables", post(admin::update_env))
        .route("/api/import", post(admin::import))
        .route("/api/{version}/sync", get(sync))
        .route("/api/sync", get(sync))
        .route("/api/convect/metrics", get(admin::metrics))
        .route("/api/convect/scheduled", get(admin::scheduled))
        .route("/api/convect/crons", get(admin::crons))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES));
    let deploy = Router::new().route("/api/deploy", post(admin::deploy)).layer(DefaultBodyLimit::max(MAX_DEPLOY_BYTES));
    // Uploads stream; `file_storage` applies its own limit.
    let files = files::routes().layer(DefaultBodyLimit::disable());
    // Web pages on any origin call the API, as they call Convex's. Credentials
    // travel in headers, never cookies, so any origin may. HTTP actions answer
    // CORS themselves (their OPTIONS routes), as on Convex.
    let cors = tower_http::cors::CorsLayer::very_permissive().max_age(std::time::Duration::from_secs(86400));
    Router::new()
        .route("/version", get(|| async { concat!("convect ", env!("CARGO_PKG_VERSION")) }))
        .merge(api)
        .merge(deploy)
        .merge(files)
        .layer(cors)
        .merge(site::under_http())
        .with_state(state)
}

pub(crate) fn bad_request(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, message.into()).into_response()
}

/// Admin requests carry `Authorization: Convex <admin key>`, and, acting as
/// a user, `:<base64 of the identity's JSON>` after the key (convex-js's
/// `setAdminAuth(key, identity)`).
pub(crate) fn caller_of(state: &AppState, headers: &HeaderMap) -> Result<Caller, Response> {
    let Some(value) = headers.get("authorization") else { return Ok(Caller::Client) };
    let value = value.to_str().unwrap_or_default();
    match value.strip_prefix("Convex ").map(|v| v.split_once(':').map_or(v, |(key, _)| key)) {
        Some(key) if constant_time_eq(key.as_bytes(), state.admin_key.as_bytes()) => Ok(Caller::Admin),
        Some(_) => Err((StatusCode::UNAUTHORIZED, "The admin key is not valid for this deployment.").into_response()),
        None => Ok(Caller::Client),
    }
}

/// The caller, and the user a request runs for: a verified `Bearer` token's
/// (a refused one is an error, never an anonymous call), or the identity an
/// admin acts as.
pub(crate) async fn who(state: &AppState, headers: &HeaderMap) -> Result<(Caller, CallerIdentity), Response> {
    let caller = caller_of(state, headers)?;
    let value = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if let Some(token) = value.strip_prefix("Bearer ") {
        return match state.engine.deployment().auth.verify(token.trim()).await {
            Ok(identity) => Ok((caller, CallerIdentity::User(Arc::new(identity.json)))),
            Err(e) => Err((StatusCode::UNAUTHORIZED, Json(json!({ "code": e.code(), "message": e.to_string() }))).into_response()),
        };
    }
    let acting_as = value.strip_prefix("Convex ").and_then(|v| v.split_once(':')).map(|(_, identity)| identity);
    match acting_as {
        None => Ok((caller, CallerIdentity::Anonymous)),
        Some(encoded) => match acting_as_identity(encoded) {
            Some(identity) => Ok((caller, CallerIdentity::User(Arc::new(identity)))),
            None => Err(bad_request("The identity after the admin key is not base64-encoded JSON of an object")),
        },
    }
}

/// The identity an admin acts as, from the base64 JSON after the key.
pub(crate) fn acting_as_identity(encoded: &str) -> Option<Json_> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let mut identity: Json_ = serde_json::from_slice(&bytes).ok()?;
    with_token_identifier(&mut identity);
    identity.is_object().then_some(identity)
}

/// As Convex completes an identity an admin acts as: `tokenIdentifier` is
/// `issuer|subject` unless given.
pub(crate) fn with_token_identifier(identity: &mut Json_) {
    let (Some(issuer), Some(subject)) = (identity["issuer"].as_str(), identity["subject"].as_str()) else { return };
    let token = format!("{issuer}|{subject}");
    if let Some(fields) = identity.as_object_mut() {
        fields.entry("tokenIdentifier").or_insert(Json_::String(token));
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_body(body: &Bytes) -> Result<Json_, Response> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("Malformed request body: {e}")))
}

/// Clients send `args` as an object (current) or as a one-element array (older).
fn args_of(body: &Json_) -> Json_ {
    match &body["args"] {
        Json_::Array(a) if a.len() == 1 => a[0].clone(),
        other => other.clone(),
    }
}

/// Who calls, and the JSON body of a function call, which must name a `path`.
async fn call_request(state: &AppState, headers: &HeaderMap, body: &Bytes) -> Result<((Caller, CallerIdentity), Json_), Response> {
    let body = parse_body(body)?;
    if !body["path"].is_string() {
        return Err(bad_request("Malformed request body: missing `path`"));
    }
    Ok((who(state, headers).await?, body))
}

async fn call(State(state): State<AppState>, headers: HeaderMap, body: Bytes, kind: Option<UdfKind>) -> Response {
    let ((caller, identity), body) = match call_request(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let path = body["path"].as_str().expect("checked by call_request");
    let result = state.engine.call(path, kind, args_of(&body), caller, identity).await;
    respond(path, result)
}

/// `ConvexHttpClient.consistentQuery`, step one: the timestamp at which the
/// client's following `/api/query_at_ts` calls all read. It travels in the sync
/// protocol's encoding; clients treat it as opaque.
async fn query_ts(State(state): State<AppState>) -> Response {
    Json(json!({ "ts": encode_ts(state.engine.committer().latest()) })).into_response()
}

/// Step two: one query at a timestamp from `/api/query_ts`. Storage keeps every
/// version, so any committed timestamp can be read.
async fn query_at_ts(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let (who, body) = match call_request(&state, &headers, &body).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let path = body["path"].as_str().expect("checked by call_request");
    let Some(ts) = body["ts"].as_str().and_then(decode_ts) else {
        return bad_request("Malformed request body: `ts` must be a timestamp from /api/query_ts");
    };
    if ts > state.engine.committer().latest() {
        return bad_request("Malformed request body: `ts` is later than any commit");
    }
    let run = state.engine.query_at(path, args_of(&body), who, ts, Journal::default()).await;
    respond(path, run.result)
}

/// The inverse of `encode_ts`: base64 of 8 little-endian bytes.
fn decode_ts(encoded: &str) -> Option<Timestamp> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    Some(Timestamp::from_le_bytes(bytes.try_into().ok()?))
}

async fn run_by_path(State(state): State<AppState>, Path(path): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    let (caller, identity) = match who(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    // `/api/run/dir/file/name` names `dir/file:name`.
    let path = match path.rsplit_once('/') {
        Some((module, name)) if !path.contains(':') => format!("{module}:{name}"),
        _ => path,
    };
    let result = state.engine.call(&path, None, args_of(&body), caller, identity).await;
    respond(&path, result)
}

/// A call's outcome as Convex's HTTP API answers it: `200` whether the function
/// succeeded or failed (clients read `status` in the body; the PyPI client's
/// `http_client.ConvexHttpClient` accepts nothing else), fields in Convex's
/// order, and `errorData` and `logLines` only when there are any. A system
/// error is no function outcome: `503` with its code, as Convex answers it.
fn respond(path: &str, result: CallResult) -> Response {
    if let Err(CallError { system: Some(e), .. }) = &result.value {
        tracing::info!(path, code = e.code(), error = %e, "call failed with a system error");
        let body = json!({ "code": e.code(), "message": e.to_string() });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    let mut body = match result.value {
        Ok(value) => json!({ "status": "success", "value": value }),
        Err(e) => {
            let mut body = json!({ "status": "error", "errorMessage": client_message(path, &e.message) });
            if let Some(data) = e.data {
                body["errorData"] = data;
            }
            body
        }
    };
    if !result.log_lines.is_empty() {
        body["logLines"] = json!(result.log_lines);
    }
    Json(body).into_response()
}
