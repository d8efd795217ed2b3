//! File storage over HTTP, as Convex serves it: `POST /api/storage/upload`
//! (an upload URL: the raw body becomes a file) and `GET /api/storage/<id>`
//! (what `getUrl` returns), with `Range`, `ETag` and `If-None-Match`. Bytes
//! stream both ways in bounded memory; `file_storage` owns everything else.

use super::AppState;
use crate::file_storage::tokens::TokenError;
use crate::file_storage::{parse_sha256, table, StoreError, Upload};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::json;
use std::io::{Seek, SeekFrom};
use tokio::io::AsyncReadExt;

/// Convex's caching of file downloads.
const CACHE_CONTROL: &str = "private, max-age=2592000";
/// Each read is a hop to a blocking thread; larger reads make fewer.
const READ_CHUNK: usize = 512 << 10;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/storage/upload", post(upload)).route("/api/storage/{id}", get(download))
}

fn error(status: StatusCode, code: &str, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "code": code, "message": message.to_string() }))).into_response()
}

#[derive(serde::Deserialize)]
struct UploadQuery {
    token: Option<String>,
}

async fn upload(State(state): State<AppState>, Query(query): Query<UploadQuery>, headers: HeaderMap, body: Body) -> Response {
    let engine = &state.engine;
    let grant = match engine.files().check_token(query.token.as_deref().unwrap_or_default()) {
        Ok(grant) => grant,
        Err(e @ TokenError::Invalid) => return error(StatusCode::UNAUTHORIZED, "StorageTokenInvalid", e),
        Err(e @ TokenError::Expired) => return error(StatusCode::UNAUTHORIZED, "StorageTokenExpired", e),
    };
    // Refused before reading a body that could not be recorded anyway.
    match table::is_token_used(&mut engine.begin_system(), &grant.nonce) {
        Ok(false) => {}
        Ok(true) => return store_error(StoreError::TokenUsed),
        Err(e) => return store_error(e.into()),
    }
    let limit = engine.files().options.max_file_size;
    if content_length(&headers).is_some_and(|n| n > limit) {
        return store_error(StoreError::TooLarge { limit });
    }
    let expected_sha256 = match header_str(&headers, "digest") {
        Some(digest) => match parse_sha256(digest) {
            Some(d) => Some(d),
            None => return error(StatusCode::BAD_REQUEST, "StorageDigestInvalid", "the Digest header must be `sha-256=<base64 digest>`"),
        },
        None => None,
    };
    let content_type = header_str(&headers, "content-type").filter(|t| !t.is_empty()).map(str::to_owned);
    let upload = Upload { body: body.into_data_stream(), content_type, expected_sha256, grant: Some(grant) };
    match engine.store_file(upload).await {
        Ok(id) => Json(json!({ "storageId": id.encode() })).into_response(),
        Err(e) => store_error(e),
    }
}

fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::TooLarge { .. } => error(StatusCode::PAYLOAD_TOO_LARGE, "StorageFileTooLarge", e),
        StoreError::DigestMismatch => error(StatusCode::BAD_REQUEST, "StorageDigestMismatch", e),
        StoreError::TokenUsed => error(StatusCode::UNAUTHORIZED, "StorageTokenUsed", e),
        StoreError::Body(_) => error(StatusCode::BAD_REQUEST, "StorageUploadIncomplete", e),
        StoreError::Io(_) | StoreError::Txn(_) => {
            tracing::error!(error = %e, "storing an upload failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "StorageError", e)
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    header_str(headers, "content-length")?.parse().ok()
}

async fn download(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let not_found = || error(StatusCode::NOT_FOUND, "FileNotFound", format!("File {id} not found"));
    let (doc, mut file) = match state.engine.open_file(&id) {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        // An id that is neither a storage id nor a UUID names no file.
        Err(StoreError::Txn(_)) => return not_found(),
        Err(e) => return store_error(e),
    };
    let size = table::size(&doc);
    let etag = format!("\"{}\"", table::sha256_base64(&doc).unwrap_or_default());
    let mut response = Response::builder()
        .header(header::CACHE_CONTROL, CACHE_CONTROL)
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(content_type) = table::content_type(&doc).and_then(|t| HeaderValue::from_str(t).ok()) {
        response = response.header(header::CONTENT_TYPE, content_type);
    }
    if header_str(&headers, "if-none-match").is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return response.status(StatusCode::NOT_MODIFIED).body(Body::empty()).expect("valid response");
    }
    let (status, start, len) = match header_str(&headers, "range").map(|r| parse_range(r, size)) {
        None | Some(RangeRequest::Whole) => (StatusCode::OK, 0, size),
        Some(RangeRequest::Part { start, end }) => {
            response = response.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (StatusCode::PARTIAL_CONTENT, start, end + 1 - start)
        }
        Some(RangeRequest::Unsatisfiable) => {
            let response = response.status(StatusCode::RANGE_NOT_SATISFIABLE).header(header::CONTENT_RANGE, format!("bytes */{size}"));
            return response.body(Body::empty()).expect("valid response");
        }
    };
    if let Err(e) = file.seek(SeekFrom::Start(start)) {
        return store_error(StoreError::Io(e));
    }
    let body = Body::from_stream(read_stream(tokio::fs::File::from_std(file), len));
    response.status(status).header(header::CONTENT_LENGTH, len).body(body).expect("valid response")
}

/// `len` bytes of `file` from where it stands, a chunk at a time.
fn read_stream(file: tokio::fs::File, len: u64) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> {
    futures::stream::unfold((file.take(len), false), |(mut file, done)| async move {
        if done {
            return None;
        }
        let mut chunk = vec![0; READ_CHUNK];
        match file.read(&mut chunk).await {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some((Ok(chunk), (file, false)))
            }
            Err(e) => Some((Err(e), (file, true))),
        }
    })
    .fuse()
}

#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No usable single range (several ranges, another unit, a malformed
    /// header, an empty file): the whole file, as RFC 9110 allows.
    Whole,
    Part { start: u64, end: u64 },
    Unsatisfiable,
}

/// A `Range` header over a file of `size` bytes; `end` is inclusive.
fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else { return RangeRequest::Whole };
    if spec.contains(',') || size == 0 {
        return RangeRequest::Whole;
    }
    let Some((first, last)) = spec.split_once('-') else { return RangeRequest::Whole };
    let (first, last) = (first.trim(), last.trim());
    let range = match (first.parse::<u64>(), last.parse::<u64>()) {
        (Ok(start), Ok(end)) if start <= end => Some((start, end.min(size - 1))),
        (Ok(start), Err(_)) if last.is_empty() => Some((start, size - 1)),
        (Err(_), Ok(suffix)) if first.is_empty() && suffix > 0 => Some((size.saturating_sub(suffix), size - 1)),
        (Err(_), Ok(0)) if first.is_empty() => return RangeRequest::Unsatisfiable,
        _ => return RangeRequest::Whole,
    };
    match range {
        Some((start, end)) if start < size => RangeRequest::Part { start, end },
        _ => RangeRequest::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_range, RangeRequest::*};

    #[test]
    fn ranges_read_as_rfc_9110_defines_them() {
        assert_eq!(parse_range("bytes=20-29", 100), Part { start: 20, end: 29 });
        assert_eq!(parse_range("bytes=90-200", 100), Part { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=95-", 100), Part { start: 95, end: 99 });
        assert_eq!(parse_range("bytes=-10", 100), Part { start: 90, end: 99 });
        assert_eq!(parse_range("bytes=-500", 100), Part { start: 0, end: 99 });
        assert_eq!(parse_range("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), Whole);
        for whole in ["bytes=0-1,5-6", "items=0-1", "bytes=x-y", "bytes=5-2", "bytes"] {
            assert_eq!(parse_range(whole, 100), Whole, "{whole}");
        }
    }
}
