//! HTTP actions over HTTP: served on the site port at the root, and under
//! `/http/` on the API port (`/http/foo` is the route `/foo`). This file only
//! translates: the body is read up to Convex's limit, the request handed to
//! `Engine::http_action` (`http_actions/`), its response sent back, a
//! streamed one chunk by chunk as the action produces it.

use super::AppState;
use crate::http_actions::{HttpBody, HttpRequest, HttpResponse, MAX_REQUEST_BODY};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures::StreamExt;

/// The site port's router: every path is the app's.
pub fn site_router(state: AppState) -> Router {
    Router::new().fallback(at_root).with_state(state)
}

/// The API port's `/http/` routes.
pub(super) fn under_http() -> Router<AppState> {
    Router::new().route("/http", any(under_prefix)).route("/http/", any(under_prefix)).route("/http/{*rest}", any(under_prefix))
}

async fn at_root(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    serve(state, request, path).await
}

async fn under_prefix(State(state): State<AppState>, request: Request) -> Response {
    let rest = request.uri().path().strip_prefix("/http").unwrap_or_default();
    let path = if rest.is_empty() { "/".to_owned() } else { rest.to_owned() };
    serve(state, request, path).await
}

async fn serve(state: AppState, request: Request, path: String) -> Response {
    let (parts, body) = request.into_parts();
    let headers = match string_headers(&parts.headers) {
        Ok(h) => h,
        Err(response) => return response,
    };
    let body = match read_body(&parts.headers, body).await {
        Ok(b) => b,
        Err(response) => return response,
    };
    let request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().map(str::to_owned),
        headers,
        body,
    };
    into_http(state.engine.http_action(request).await)
}

fn too_large() -> Response {
    let message = format!("Request body too large: HTTP actions accept at most {MAX_REQUEST_BODY} bytes (20 MiB)");
    (StatusCode::PAYLOAD_TOO_LARGE, message).into_response()
}

fn malformed(message: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("Malformed request: {message}")).into_response()
}

/// Header values must be text for `Request.headers`.
fn string_headers(headers: &HeaderMap) -> Result<Vec<(String, String)>, Response> {
    headers
        .iter()
        .map(|(name, value)| match value.to_str() {
            Ok(v) => Ok((name.as_str().to_owned(), v.to_owned())),
            Err(_) => Err(malformed(format!("the value of header `{name}` is not visible ASCII"))),
        })
        .collect()
}

/// Past the limit, the rest of a body is read and dropped, up to this many
/// bytes in all, before the 413 goes out: a client still sending when the
/// connection closes sees a reset instead of the answer. Bigger bodies are
/// answered at once.
const MAX_DRAINED: u64 = 256 << 20;

/// The whole body, never buffered past the limit.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Response> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_DRAINED) {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(MAX_REQUEST_BODY as u64) as usize);
    let mut seen: u64 = 0;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| malformed(format!("reading the body failed: {e}")))?;
        seen += chunk.len() as u64;
        if seen > MAX_DRAINED {
            break;
        }
        if seen <= MAX_REQUEST_BODY as u64 {
            bytes.extend_from_slice(&chunk);
        } else {
            bytes = Vec::new(); // only draining from here on
        }
    }
    if seen > MAX_REQUEST_BODY as u64 {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The handler's response; one it could not have meant (an invalid header)
/// is a server error, named.
fn into_http(response: HttpResponse) -> Response {
    let mut out = Response::new(match response.body {
        HttpBody::Full(bytes) => Body::from(bytes),
        HttpBody::Stream(chunks) => Body::from_stream(chunks),
    });
    *out.status_mut() = match StatusCode::from_u16(response.status) {
        Ok(s) => s,
        Err(_) => return server_error(format!("invalid status {}", response.status)),
    };
    for (name, value) in response.headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) else {
            return server_error(format!("invalid response header `{name}`"));
        };
        out.headers_mut().append(name, value);
    }
    out
}

fn server_error(message: String) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("The HTTP action's response is not valid HTTP: {message}")).into_response()
}
