//! HTTP actions: requests routed by `convex/http.ts`'s `HttpRouter`. The
//! boundary: `server/site.rs` turns HTTP into an `HttpRequest` (body read
//! whole, within Convex's limit) and an `HttpResponse` back into HTTP; this
//! module runs the router's module on the action pool, where prelude.js's
//! `invokeHttp` routes the request with the router's own `lookup`, and renders
//! failures as Convex's HTTP action errors read. A response comes back whole,
//! or, when its body is a `ReadableStream`, as a head and then chunks while
//! the action runs (`stream.rs`). Only the QuickJS runtime serves them:
//! `http.ts` cannot be `"use node"`.

pub mod stream;

use crate::deployment::Deployment;
use crate::engine::Engine;
use crate::env_vars::SITE_URL;
use crate::runtime::{CallerIdentity, ExecOutcome, Execution, JsFailure, UdfKind};
use crate::udf::action_host::ActionHost;
use crate::udf::{logged_request_id, CallError};
use base64::Engine as _;
use convect_bundler::ModuleKind;
use axum::body::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use serde_json::json;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Convex's limit on an HTTP action's request body.
pub const MAX_REQUEST_BODY: usize = 20 << 20;

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// One request, as the handler's `Request` sees it.
#[derive(Debug)]
pub struct HttpRequest {
    pub method: String,
    /// The raw (percent-encoded) path the router matches, as `new URL(url).pathname`.
    pub path: String,
    /// The query string, without `?`, if any.
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub struct HttpResponse {
    pub status: u16,
    /// In order, repeated names (`set-cookie`) kept apart.
    pub headers: Vec<(String, String)>,
    pub body: HttpBody,
}

pub enum HttpBody {
    Full(Vec<u8>),
    /// Chunks as the action produces them; an error after the head (the
    /// action failed mid-stream) must cut the response off, not end it.
    Stream(BoxStream<'static, std::io::Result<Bytes>>),
}

/// What `invokeHttp` resolves to when the body was not a stream.
#[derive(serde::Deserialize)]
struct WholeResponse {
    status: u16,
    headers: Vec<(String, String)>,
    /// Base64 as the isolate hands it over; bytes once decoded.
    #[serde(deserialize_with = "from_base64")]
    body: Vec<u8>,
}

fn from_base64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(d)?;
    BASE64.decode(text).map_err(serde::de::Error::custom)
}

impl HttpRequest {
    /// The URL the handler sees: the deployment's public site URL
    /// (`CONVEX_SITE_URL`, right behind a proxy too), then path and query.
    fn url(&self, deployment: &Deployment) -> String {
        let base = deployment.env.get(SITE_URL).map(|s| s.trim_end_matches('/')).unwrap_or_default();
        match &self.query {
            Some(q) => format!("{base}{}?{q}", self.path),
            None => format!("{base}{}", self.path),
        }
    }

    /// What prelude.js's `invokeHttp` reads.
    fn to_json(&self, deployment: &Deployment) -> String {
        let body = (!self.body.is_empty()).then(|| BASE64.encode(&self.body));
        json!({
            "method": self.method,
            "url": self.url(deployment),
            "path": self.path,
            "headers": self.headers,
            "body": body,
        })
        .to_string()
    }

    /// Who the request is from: a verified `Bearer` token's user. Refused
    /// credentials do not refuse the request (the handler may not care); asking
    /// who the caller is fails instead, with the reason.
    async fn identity(&self, deployment: &Deployment) -> CallerIdentity {
        let Some((_, value)) = self.headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("authorization")) else {
            return CallerIdentity::Anonymous;
        };
        let Some(token) = value.strip_prefix("Bearer ") else {
            return CallerIdentity::Refused("The Authorization header must be `Bearer <token>`".into());
        };
        match deployment.auth.verify(token.trim()).await {
            Ok(identity) => CallerIdentity::User(Arc::new(identity.json)),
            Err(e) => CallerIdentity::Refused(e.to_string()),
        }
    }
}

type Run = tokio::task::JoinHandle<Result<ExecOutcome, JsFailure>>;

impl Engine {
    /// Runs the HTTP action `request` routes to; every outcome is a response.
    pub async fn http_action(&self, request: HttpRequest) -> HttpResponse {
        let deployment = self.deployment();
        let Some(module) = router_module(&deployment) else { return not_routed(&request.path) };
        let exec = Execution {
            kind: UdfKind::Action,
            module,
            export: "default".into(),
            args_json: request.to_json(&deployment),
            request_id: String::new(),
            seed: rand::random(),
            now_ms: 0.0, // actions read the real clock
            time_limit: self.inner.action_timeout,
            env: deployment.env.clone(),
            identity: CallerIdentity::Anonymous,
        };
        let (sink, mut source) = stream::response_channel();
        let host = ActionHost {
            response: Some(sink),
            identity: request.identity(&deployment).await,
            ..ActionHost::new(self.clone())
        };
        let engine = self.clone();
        let for_pool = deployment.clone();
        // Its own task: a streamed response outlives this call.
        let mut run: Run = tokio::spawn(async move { engine.inner.action_pool.run(for_pool, move |iso| iso.run_http(&exec, host).0).await });
        let path = request.path;
        tokio::select! {
            biased;
            Ok(head) = &mut source.head => self.streamed(deployment, path, head, source.chunks, run),
            joined = &mut run => {
                let result = joined.unwrap_or_else(|e| Err(JsFailure::new(format!("the HTTP action crashed: {e}"))));
                let response = Self::finished(&path, result).and_then(|value| {
                    let whole: WholeResponse = serde_json::from_str(&value).map_err(|e| JsFailure::new(format!("invalid HTTP action response: {e}")))?;
                    Ok(HttpResponse { status: whole.status, headers: whole.headers, body: HttpBody::Full(whole.body) })
                });
                response.unwrap_or_else(|failure| self.http_error(&deployment, &path, failure))
            }
        }
    }

    /// Logs an execution's lines; its result.
    fn finished(path: &str, run: Result<ExecOutcome, JsFailure>) -> Result<String, JsFailure> {
        let outcome = run?;
        for line in &outcome.log_lines {
            tracing::info!(path, "{line}");
        }
        outcome.result
    }

    /// A response whose head the action sent: its chunks as they come, then
    /// the action's outcome, which cuts the response off if it failed.
    fn streamed(&self, deployment: Arc<Deployment>, path: String, head: stream::Head, chunks: mpsc::Receiver<Bytes>, run: Run) -> HttpResponse {
        let engine = self.clone();
        let outcome = async move {
            let result = run.await.unwrap_or_else(|e| Err(JsFailure::new(format!("the HTTP action crashed: {e}"))));
            let failure = Self::finished(&path, result).err()?;
            let error = engine.http_error(&deployment, &path, failure);
            tracing::warn!(path, status = error.status, "the HTTP action failed after its response started; cutting it off");
            Some(Err(std::io::Error::other("the HTTP action failed mid-response")))
        };
        let body = futures::stream::unfold(chunks, |mut rx| async move { rx.recv().await.map(|chunk| (Ok(chunk), rx)) })
            .chain(futures::stream::once(outcome).filter_map(std::future::ready));
        HttpResponse { status: head.status, headers: head.headers, body: HttpBody::Stream(Box::pin(body)) }
    }

    /// A failed HTTP action as Convex answers it: 500, with the error's
    /// message in `code` behind a logged request id, the message and its
    /// source-mapped frames in `trace`, and any `ConvexError` data in `data`.
    fn http_error(&self, deployment: &Deployment, path: &str, failure: JsFailure) -> HttpResponse {
        let request_id = logged_request_id(path, &failure.to_string());
        let code = format!("{request_id} Server Error: {}", failure.message);
        let error = CallError::from_js(failure, deployment, self.store().as_ref());
        let mut body = json!({ "code": code, "trace": error.message.trim_end() });
        if let Some(data) = error.data {
            body["data"] = data;
        }
        HttpResponse {
            status: 500,
            headers: vec![("content-type".into(), "application/json".into())],
            body: HttpBody::Full(body.to_string().into_bytes()),
        }
    }
}

/// The module of `http.ts`, if the deployment has one.
fn router_module(deployment: &Deployment) -> Option<String> {
    deployment.record.modules.iter().find(|m| m.kind == ModuleKind::Http).map(|m| m.path.clone())
}

/// What convex/server's `runRequest` answers a request no route matches.
fn not_routed(path: &str) -> HttpResponse {
    HttpResponse {
        status: 404,
        headers: vec![("content-type".into(), "text/plain;charset=UTF-8".into())],
        body: HttpBody::Full(format!("No HttpAction routed for {path}").into_bytes()),
    }
}
