//! Streamed responses of HTTP actions. When a handler returns a `Response`
//! whose body is a `ReadableStream` (server-sent events, a proxied LLM
//! stream), prelude.js sends its head through `convect/httpResponseHead` and
//! then each chunk through `convect/httpResponseChunk`, while the action keeps
//! running. A chunk's syscall completes only once the chunk is queued here,
//! and the queue is short, so a slow client slows the handler (back-pressure)
//! instead of filling memory. The server sends the head as soon as it
//! arrives and each chunk as it is produced.

use crate::runtime::{Completion, SyscallError};
use axum::body::Bytes;
use base64::Engine as _;
use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

/// Chunks produced but not yet taken by the connection.
const CHUNKS_QUEUED: usize = 4;

/// A streamed response's status and headers.
#[derive(Debug, serde::Deserialize)]
pub struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

/// The action's end: where its response goes.
pub struct ResponseSink {
    head: Option<oneshot::Sender<Head>>,
    chunks: mpsc::Sender<Bytes>,
}

/// The server's end.
pub struct ResponseSource {
    pub head: oneshot::Receiver<Head>,
    pub chunks: mpsc::Receiver<Bytes>,
}

pub fn response_channel() -> (ResponseSink, ResponseSource) {
    let (head_tx, head) = oneshot::channel();
    let (chunks_tx, chunks) = mpsc::channel(CHUNKS_QUEUED);
    (ResponseSink { head: Some(head_tx), chunks: chunks_tx }, ResponseSource { head, chunks })
}

fn fail(message: &str) -> Result<Json, SyscallError> {
    Err(SyscallError::new(message))
}

impl ResponseSink {
    /// Serves the streaming syscall `op` (see [`is_stream_op`]).
    pub fn syscall(&mut self, op: &str, args: Json, done: Completion, runtime: &tokio::runtime::Handle) {
        match op {
            "convect/httpResponseHead" => {
                let head = serde_json::from_value::<Head>(args).map_err(|e| SyscallError::new(format!("invalid response head: {e}")));
                let sent = match (head, self.head.take()) {
                    (Ok(head), Some(tx)) => tx.send(head).map_or_else(|_| fail("the client disconnected"), |_| Ok(Json::Null)),
                    (Ok(_), None) => fail("the response has already started"),
                    (Err(e), _) => Err(e),
                };
                done.complete(sent);
            }
            "convect/httpResponseChunk" => {
                let chunk = base64::engine::general_purpose::STANDARD.decode(args["chunk"].as_str().unwrap_or_default());
                let chunks = self.chunks.clone();
                runtime.spawn(async move {
                    let sent = match chunk {
                        Ok(bytes) => chunks.send(Bytes::from(bytes)).await.map_or_else(|_| fail("the client disconnected"), |_| Ok(Json::Null)),
                        Err(e) => Err(SyscallError::new(format!("invalid response chunk: {e}"))),
                    };
                    done.complete(sent);
                });
            }
            _ => done.complete(Err(SyscallError::new(format!("Unsupported syscall `{op}`")))),
        }
    }
}

pub fn is_stream_op(op: &str) -> bool {
    op.starts_with("convect/httpResponse")
}
