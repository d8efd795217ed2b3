//! The system tables of file storage, read and written inside transactions.
//!
//! `_storage` holds one document per stored file, as Convex shows it
//! (`sha256` in base64, `size`, `contentType` if known) plus two fields only
//! the engine sees, `_uuid` (the file's old-style storage id, which Convex's
//! APIs still accept) and `_blob` (the BLAKE3 digest naming its bytes).
//! Functions never see `_`-prefixed fields other than `_id`/`_creationTime`
//! (`Document::visible_value`); user documents cannot have such fields.
//! `_upload_tokens` remembers the nonce of every upload token used, until it
//! expires, so an upload URL records at most one file.

use super::tokens::Grant;
use crate::catalog::Catalog;
use crate::storage::{CatalogWrite, KeyRange};
use crate::txn::{Transaction, TxnError};
use crate::types::{Document, Order};
use base64::Engine as _;
use convect_schema::{encode_index_key, prefix_successor, DocumentId, Value};
use serde_json::{json, Value as Json};
use std::collections::BTreeMap;

pub const STORAGE: &str = "_storage";
pub const UPLOAD_TOKENS: &str = "_upload_tokens";
const UUID: &str = "_uuid";
pub(super) const BLOB: &str = "_blob";
const NONCE: &str = "nonce";
const EXPIRES: &str = "expiresAt";
const BY_UUID: &str = "by_uuid";
const BY_BLOB: &str = "by_blob";
const BY_NONCE: &str = "by_nonce";
const BY_EXPIRY: &str = "by_expiry";

/// The system tables and indexes this module reads, for those `catalog`
/// lacks. They are created when the engine opens, before any transaction can
/// look for them.
pub fn plan_system_tables(catalog: &mut Catalog) -> Vec<CatalogWrite> {
    let mut writes = catalog.plan_system_table(STORAGE, &[(BY_UUID, &[UUID]), (BY_BLOB, &[BLOB])]);
    writes.extend(catalog.plan_system_table(UPLOAD_TOKENS, &[(BY_NONCE, &[NONCE]), (BY_EXPIRY, &[EXPIRES])]));
    writes
}

/// A file whose bytes are stored, about to be recorded.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub blob: String,
    pub sha256: [u8; 32],
    pub size: u64,
    pub content_type: Option<String>,
}

/// Records `file` in `_storage`. With `grant` (an upload URL's), also marks its
/// token used; `Ok(None)` if it already was.
pub fn record(txn: &mut Transaction, file: &NewFile, grant: Option<&Grant>) -> Result<Option<DocumentId>, TxnError> {
    if let Some(grant) = grant {
        if is_token_used(txn, &grant.nonce)? {
            return Ok(None);
        }
        let mut used = BTreeMap::new();
        used.insert(NONCE.to_owned(), Value::String(grant.nonce.clone()));
        used.insert(EXPIRES.to_owned(), Value::Float64(grant.expires_ms as f64));
        txn.insert_system(UPLOAD_TOKENS, used)?;
    }
    let mut doc = BTreeMap::new();
    doc.insert("sha256".to_owned(), Value::String(base64::engine::general_purpose::STANDARD.encode(file.sha256)));
    doc.insert("size".to_owned(), Value::Float64(file.size as f64));
    if let Some(content_type) = &file.content_type {
        doc.insert("contentType".to_owned(), Value::String(content_type.clone()));
    }
    doc.insert(UUID.to_owned(), Value::String(uuid::Uuid::new_v4().to_string()));
    doc.insert(BLOB.to_owned(), Value::String(file.blob.clone()));
    Ok(Some(txn.insert_system(STORAGE, doc)?))
}

pub fn is_token_used(txn: &mut Transaction, nonce: &str) -> Result<bool, TxnError> {
    Ok(first(txn, UPLOAD_TOKENS, BY_NONCE, nonce)?.is_some())
}

/// The `_storage` document a storage id names: its `_id`, or its old-style
/// UUID. `op` names the API for the error about an id that is neither.
pub fn resolve(txn: &mut Transaction, storage_id: &str, op: &str) -> Result<Option<Document>, TxnError> {
    if let Ok(id) = DocumentId::decode(storage_id) {
        if txn.table_name_of(&id).as_deref() == Some(STORAGE) {
            return txn.get(id);
        }
    } else if uuid::Uuid::try_parse(storage_id).is_ok() {
        return first(txn, STORAGE, BY_UUID, storage_id);
    }
    Err(TxnError::User(format!("Invalid argument `storageId` for `storage.{op}`: Invalid storage ID: \"{storage_id}\"")))
}

/// Deletes the file a storage id names; its bytes are collected once no
/// `_storage` document refers to them.
pub fn delete(txn: &mut Transaction, storage_id: &str) -> Result<(), TxnError> {
    match resolve(txn, storage_id, "delete")? {
        Some(doc) => txn.delete(doc.id),
        None => Err(TxnError::User(format!("storage id {storage_id} not found"))),
    }
}

/// What `ctx.storage.getMetadata` returns: Convex's older shape, with the
/// UUID as `storageId` and the digest in hex.
pub fn metadata(doc: &Document) -> Json {
    let sha256 = string(doc, "sha256").and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()).unwrap_or_default();
    json!({
        "storageId": string(doc, UUID),
        "sha256": sha256.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "size": size(doc),
        "contentType": string(doc, "contentType"),
    })
}

/// The BLAKE3 digest naming a file's bytes.
pub fn blob(doc: &Document) -> Option<&str> {
    string(doc, BLOB)
}

pub fn content_type(doc: &Document) -> Option<&str> {
    string(doc, "contentType")
}

pub fn sha256_base64(doc: &Document) -> Option<&str> {
    string(doc, "sha256")
}

pub fn size(doc: &Document) -> u64 {
    match doc.value.get("size") {
        Some(Value::Float64(n)) => *n as u64,
        _ => 0,
    }
}

/// Whether any `_storage` document refers to these bytes.
pub fn is_referenced(txn: &mut Transaction, blob: &str) -> Result<bool, TxnError> {
    Ok(first(txn, STORAGE, BY_BLOB, blob)?.is_some())
}

/// Deletes up to `limit` used-token records that expired before `now_ms`
/// (their tokens are refused as expired anyway); returns how many.
pub fn prune_tokens(txn: &mut Transaction, now_ms: u64, limit: usize) -> Result<usize, TxnError> {
    let index = txn.index_named(UPLOAD_TOKENS, BY_EXPIRY)?;
    let end = encode_index_key(&[Some(&Value::Float64(now_ms as f64))]);
    let (docs, _) = txn.scan(&index, &KeyRange { start: Vec::new(), end: Some(end) }, Order::Asc, limit)?;
    for (_, doc) in &docs {
        txn.delete(doc.id)?;
    }
    Ok(docs.len())
}

fn string<'a>(doc: &'a Document, field: &str) -> Option<&'a str> {
    match doc.value.get(field) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// The first document of `table` whose indexed field equals `value`.
fn first(txn: &mut Transaction, table: &str, index: &str, value: &str) -> Result<Option<Document>, TxnError> {
    let index = txn.index_named(table, index)?;
    let start = encode_index_key(&[Some(&Value::String(value.to_owned()))]);
    let end = prefix_successor(&start);
    let (docs, _) = txn.scan(&index, &KeyRange { start, end }, Order::Asc, 1)?;
    Ok(docs.into_iter().next().map(|(_, doc)| doc))
}
