//! The benchmark document: the mutation's arguments, and the stored JSON that
//! the raw SQLite comparison writes in its place (same fields, same size).

use serde_json::{json, Value};

/// Length of the `body` string, about a chat message.
const BODY_LEN: usize = 200;

fn body() -> String {
    "The quick brown fox jumps over the lazy dog. ".chars().cycle().take(BODY_LEN).collect()
}

/// Arguments of `items:insert` for the `n`-th document.
pub fn args(n: usize) -> Value {
    json!({ "n": n as f64, "body": body() })
}

/// What Convect stores for that document: its fields plus the system fields
/// (`id` is the 16-byte random part, spelled as 32 characters like Convect's ids).
pub fn stored(n: usize, id: &[u8]) -> String {
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let creation_time = 1.7e12 + n as f64;
    let mut doc = args(n);
    doc["_id"] = json!(id);
    doc["_creationTime"] = json!(creation_time);
    doc.to_string()
}
