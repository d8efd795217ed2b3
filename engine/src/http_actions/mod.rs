//! HTTP actions: requests routed by `convex/http.ts`'s `HttpRouter`, buffered
//! whole in both directions (no streaming yet). The boundary: `server/site.rs`
//! turns HTTP into an `HttpRequest` (body already limited) and an
//! `HttpResponse` back into HTTP; this module runs the router's module on the
//! action pool, where prelude.js's `invokeHttp` routes the request with the
//! router's own `lookup`, and renders failures as Convex's HTTP action errors
//! read. Only the QuickJS runtime serves them: `http.ts` cannot be `"use node"`.

use crate::deployment::Deployment;
use crate::engine::Engine;
use crate::env_vars::SITE_URL;
use crate::runtime::{Execution, JsFailure, UdfKind};
use crate::udf::action_host::ActionHost;
use crate::udf::{logged_request_id, CallError};
use base64::Engine as _;
use convect_bundler::ModuleKind;
use serde_json::json;

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

#[derive(Debug, serde::Deserialize)]
pub struct HttpResponse {
    pub status: u16,
    /// In order, repeated names (`set-cookie`) kept apart.
    pub headers: Vec<(String, String)>,
    /// Base64 as the isolate hands it over; bytes once decoded.
    #[serde(deserialize_with = "from_base64")]
    pub body: Vec<u8>,
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

    fn has_credentials(&self) -> bool {
        self.headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("authorization"))
    }
}

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
        };
        let host = ActionHost { unverified_credentials: request.has_credentials(), ..ActionHost::new(self.clone()) };
        let run = self.inner.action_pool.run(deployment.clone(), move |iso| iso.run_http(&exec, host).0).await;
        let result = run.and_then(|outcome| {
            for line in &outcome.log_lines {
                tracing::info!(path = request.path, "{line}");
            }
            outcome.result
        });
        let response = result.and_then(|value| {
            serde_json::from_str(&value).map_err(|e| JsFailure::new(format!("invalid HTTP action response: {e}")))
        });
        response.unwrap_or_else(|failure| self.http_error(&deployment, &request.path, failure))
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
            body: body.to_string().into_bytes(),
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
        body: format!("No HttpAction routed for {path}").into_bytes(),
    }
}
