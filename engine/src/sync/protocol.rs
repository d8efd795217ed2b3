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

    pub fn modification(&self, query_id: QueryId) -> Json {
        match self {
            QueryOutcome::Updated { value, log_lines, journal } => serde_json::json!({
                "type": "QueryUpdated", "queryId": query_id, "value": value, "logLines": log_lines, "journal": journal,
            }),
            QueryOutcome::Failed { message, data, log_lines, journal } => {
                let mut m = serde_json::json!({
                    "type": "QueryFailed", "queryId": query_id, "errorMessage": message, "logLines": log_lines, "journal": journal,
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

pub fn removed(query_id: QueryId) -> Json {
    serde_json::json!({ "type": "QueryRemoved", "queryId": query_id })
}
