//! Small domain types shared across the engine: commit timestamps, index ids and
//! the stored form of a document.

use convect_schema::{DocumentId, Value};
use std::collections::BTreeMap;

/// A commit timestamp. Strictly increasing across commits; a snapshot read at `ts`
/// sees exactly the commits with timestamps `<= ts`.
pub type Timestamp = u64;

/// Persistent identifier of one index (including the implicit `by_id` and
/// `by_creation_time` indexes of every table).
pub type IndexId = i64;

/// A document as stored: its id and its full value, system fields included.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: DocumentId,
    pub value: BTreeMap<String, Value>,
}

impl Document {
    /// The document as functions see it. System tables keep engine-internal
    /// fields under `_`-prefixed names besides `_id` and `_creationTime`; user
    /// documents cannot have such fields, so this hides exactly those.
    pub fn visible_value(&self) -> Value {
        let visible = self.value.iter().filter(|(k, _)| !k.starts_with('_') || *k == "_id" || *k == "_creationTime");
        Value::Object(visible.map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

/// Scan direction over an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// The 20-byte storage form of a document id: table number (big-endian) then the
/// random part, so that all ids of one table are contiguous.
pub fn id_to_bytes(id: &DocumentId) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[..4].copy_from_slice(&id.table_number.to_be_bytes());
    out[4..].copy_from_slice(&id.internal_id);
    out
}

pub fn id_from_bytes(bytes: &[u8]) -> Option<DocumentId> {
    if bytes.len() != 20 {
        return None;
    }
    let table_number = u32::from_be_bytes(bytes[..4].try_into().ok()?);
    let internal_id = bytes[4..].try_into().ok()?;
    Some(DocumentId { table_number, internal_id })
}
