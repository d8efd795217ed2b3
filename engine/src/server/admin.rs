//! Admin routes: deploys, imports, environment variables, scheduled and cron
//! jobs, and metrics. Every route here requires the admin key.

use super::{bad_request, caller_of, AppState};
use crate::deploy::{DeployError, DeployRequest};
use crate::env_vars::EnvError;
use crate::import::{ImportError, ImportRequest};
use crate::udf::Caller;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    match caller_of(state, headers)? {
        Caller::Admin => Ok(()),
        _ => Err((StatusCode::UNAUTHORIZED, "This route needs the admin key (Authorization: Convex <key>).").into_response()),
    }
}

/// An admin request's JSON body, after checking the admin key.
fn admin_body<T: serde::de::DeserializeOwned>(state: &AppState, headers: &HeaderMap, body: &Bytes, what: &str) -> Result<T, Response> {
    require_admin(state, headers)?;
    serde_json::from_slice(body).map_err(|e| bad_request(format!("Malformed {what} request: {e}")))
}

pub async fn deploy(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let request: DeployRequest = match admin_body(&state, &headers, &body, "deploy") {
        Ok(r) => r,
        Err(r) => return r,
    };
    match state.engine.deploy(request).await {
        Ok(summary) => Json(json!(summary)).into_response(),
        Err(DeployError::MissingModules(hashes)) => (StatusCode::CONFLICT, Json(json!({ "missing": hashes }))).into_response(),
        Err(e @ DeployError::Invalid(_)) => bad_request(e.to_string()),
        Err(e @ DeployError::Rejected(_)) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    }
}

#[derive(serde::Deserialize)]
struct EnvChange {
    name: String,
    value: Option<String>,
}

#[derive(serde::Deserialize)]
struct EnvRequest {
    changes: Vec<EnvChange>,
}

pub async fn update_env(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let request: EnvRequest = match admin_body(&state, &headers, &body, "environment variables") {
        Ok(r) => r,
        Err(r) => return r,
    };
    let changes = request.changes.into_iter().map(|c| (c.name, c.value)).collect();
    match state.engine.set_env(changes).await {
        Ok(()) => Json(json!({})).into_response(),
        Err(e @ EnvError::Commit(_)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => bad_request(e.to_string()),
    }
}

pub async fn import(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let request: ImportRequest = match admin_body(&state, &headers, &body, "import") {
        Ok(r) => r,
        Err(r) => return r,
    };
    match state.engine.import(request).await {
        Ok(summary) => Json(json!(summary)).into_response(),
        Err(ImportError::Record { index, message }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "index": index, "message": message }))).into_response()
        }
        Err(e @ ImportError::Failed(_)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// `convect scheduled`: the most recent scheduled functions.
pub async fn scheduled(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require_admin(&state, &headers) {
        return r;
    }
    listed(state.engine.scheduled_jobs(LISTED_JOBS))
}

/// `convect crons`: the cron jobs with their last and next runs.
pub async fn crons(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require_admin(&state, &headers) {
        return r;
    }
    listed(state.engine.cron_jobs())
}

/// Scheduled functions `convect scheduled` shows at most.
const LISTED_JOBS: usize = 1000;

fn listed(rows: Result<Vec<serde_json::Value>, crate::txn::TxnError>) -> Response {
    match rows {
        Ok(rows) => Json(json!(rows)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Counters for tests and benchmarks.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = require_admin(&state, &headers) {
        return r;
    }
    Json(json!({ "subscriptionExecutions": state.hub.query_executions() })).into_response()
}
