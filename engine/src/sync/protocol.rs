//! The sync protocol's messages, as `ConvexClient`/`ConvexReactClient` speak them
//! over the WebSocket (see the `convex` package's `browser/sync/protocol.ts`).
//! Timestamps travel as base64 of 8 little-endian bytes.

use crate::types::Timestamp;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub type QueryId = u32;
pub type RequestId = u32;

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    Connect {
        #[serde(rename = "sessionId")]
        session_id: String,
        #[serde(rename = "connectionCount", default)]
        connection_count: u32,
    },
    ModifyQuerySet {
        #[serde(rename = "baseVersion")]
        base_version: u32,
        #[serde(rename = "newVersion")]
        new_version: u32,
        modifications: Vec<QuerySetChange>,
    },
    Mutation {
        #[serde(rename = "requestId")]
        request_id: RequestId,
        #[serde(rename = "udfPath")]
        udf_path: String,
        args: Vec<Json>,
    },
    Action {
        #[serde(rename = "requestId")]
        request_id: RequestId,
        #[serde(rename = "udfPath")]
        udf_path: String,
        args: Vec<Json>,
    },
    Authenticate {
        #[serde(rename = "tokenType")]
        token_type: String,
        #[serde(rename = "baseVersion")]
        base_version: u32,
        #[serde(default)]
        value: Option<String>,
        /// An admin acting as a user: convex-js names the identity
        /// `impersonating`, the Rust crate `actingAs`.
        #[serde(default, alias = "actingAs")]
        impersonating: Option<Json>,
    },
    Event {},
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum QuerySetChange {
    Add {
        #[serde(rename = "queryId")]
        query_id: QueryId,
        #[serde(rename = "udfPath")]
        udf_path: String,
        args: Vec<Json>,
        #[serde(default)]
        journal: Option<String>,
    },
    Remove {
        #[serde(rename = "queryId")]
        query_id: QueryId,
    },
}

/// Which client is connected, as far as the protocol differs between them.
/// convex-js opens `/api/{its version}/sync`; clients built on the Rust `convex`
/// crate (the PyPI `convex` client among them) open `/api/sync` and name
/// themselves in a `Convex-Client: python-0.8.1` / `rust-0.10.4` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientVersion {
    /// `npm`, `python`, `rust`, ...; empty when the client did not say.
    kind: String,
    /// (major, minor), when the version parsed.
    version: Option<(u32, u32)>,
}

impl ClientVersion {
    /// From the sync URL's version segment (only convex-js sends one) or else the
    /// `Convex-Client` header.
    pub fn of_request(path_version: Option<&str>, header: Option<&str>) -> ClientVersion {
        let id = match path_version {
            Some(v) => format!("npm-{v}"),
            None => header.unwrap_or_default().to_string(),
        };
        let (kind, version) = id.split_once('-').unwrap_or((id.as_str(), ""));
        let mut numbers = version.split('.').map(|n| n.parse::<u32>().ok());
        let version = match (numbers.next().flatten(), numbers.next().flatten()) {
            (Some(major), Some(minor)) => Some((major, minor)),
            _ => None,
        };
        ClientVersion { kind: kind.to_string(), version }
    }

    /// Only convex-js 1.28 and later reassemble `TransitionChunk`s; the Rust
    /// crate treats one as a protocol error and reconnects, so every other
    /// client gets large Transitions whole (as Convex does).
    pub fn understands_transition_chunks(&self) -> bool {
        self.kind == "npm" && self.version.is_some_and(|v| v >= (1, 28))
    }
}

/// The version of a client's view: its query set, identity and timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateVersion {
    pub query_set: u32,
    pub identity: u32,
    pub ts: Timestamp,
}

pub fn encode_ts(ts: Timestamp) -> String {
    base64::engine::general_purpose::STANDARD.encode(ts.to_le_bytes())
}

impl Serialize for StateVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::json!({ "querySet": self.query_set, "identity": self.identity, "ts": encode_ts(self.ts) }).serialize(s)
    }
}

/// The outcome of one query, as carried in a Transition.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryOutcome {
    Updated { value: Json, log_lines: Vec<String>, journal: Option<String> },
    Failed { message: String, data: Option<Json>, log_lines: Vec<String>, journal: Option<String> },
}

impl QueryOutcome {
    /// Whether a client holding `self` would see something different in `other`.
    pub fn same_result(&self, other: &QueryOutcome) -> bool {
        match (self, other) {
            (QueryOutcome::Updated { value: a, .. }, QueryOutcome::Updated { value: b, .. }) => a == b,
            (QueryOutcome::Failed { message: a, data: x, .. }, QueryOutcome::Failed { message: b, data: y, .. }) => a == b && x == y,
            _ => false,
        }
    }

    /// The outcome as a Transition's modification; `error_message` says how a
    /// failure's message reads to the client.
    pub fn modification(&self, query_id: QueryId, error_message: impl FnOnce(&str) -> String) -> Json {
        match self {
            QueryOutcome::Updated { value, log_lines, journal } => serde_json::json!({
                "type": "QueryUpdated", "queryId": query_id, "value": value, "logLines": log_lines, "journal": journal,
            }),
            QueryOutcome::Failed { message, data, log_lines, journal } => {
                let mut m = serde_json::json!({
                    "type": "QueryFailed", "queryId": query_id, "errorMessage": error_message(message), "logLines": log_lines, "journal": journal,
                });
                if let Some(d) = data {
                    m["errorData"] = d.clone();
                }
                m
            }
        }
    }
}

pub fn transition(start: StateVersion, end: StateVersion, modifications: Vec<Json>) -> Json {
    serde_json::json!({ "type": "Transition", "startVersion": start, "endVersion": end, "modifications": modifications })
}

/// A refused `Authenticate` (`update_attempted`: the client just sent it), so
/// that the client neither keeps nor retries the credentials as they are; or
/// a token that expired during the session (not attempted: the client fetches
/// a fresh one). `base` is the identity version the server holds.
pub fn auth_error(message: &str, base: u32, update_attempted: bool) -> Json {
    serde_json::json!({ "type": "AuthError", "error": message, "baseVersion": base, "authUpdateAttempted": update_attempted })
}

pub fn removed(query_id: QueryId) -> Json {
    serde_json::json!({ "type": "QueryRemoved", "queryId": query_id })
}

#[cfg(test)]
mod tests {
    use super::ClientVersion;

    #[test]
    fn only_recent_convex_js_gets_transition_chunks() {
        let chunks = |path: Option<&str>, header: Option<&str>| ClientVersion::of_request(path, header).understands_transition_chunks();
        assert!(chunks(Some("1.48.0"), None));
        assert!(chunks(Some("1.28.0-alpha.1"), Some("python-0.8.1")));
        assert!(!chunks(Some("1.27.5"), None));
        assert!(chunks(None, Some("npm-1.30.0")));
        assert!(!chunks(None, Some("python-0.8.1")));
        assert!(!chunks(None, Some("rust-0.10.4")));
        assert!(!chunks(None, None));
        assert!(!chunks(Some("garbage"), None));
    }
}
