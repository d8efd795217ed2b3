//! `ctx.storage` in actions (and HTTP actions), in both runtimes. Unlike a
//! mutation's, each call is a transaction of its own; `store` and `get` carry
//! the file's bytes (base64, as convex/server's `1.0/storageStore` passes
//! them), which is why they are limited to what an action can hold.

use super::syscalls::storage_id_arg;
use crate::engine::Engine;
use crate::file_storage::{parse_sha256, table, StoreError, Upload};
use crate::runtime::{SyscallError, SyscallResult};
use base64::Engine as _;
use serde_json::{json, Value as Json};
use std::io::Read;

/// Largest file `storage.get` hands an action.
const MAX_ACTION_FILE: u64 = 512 << 20;

const BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

impl From<StoreError> for SyscallError {
    fn from(e: StoreError) -> Self {
        SyscallError::new(e.to_string())
    }
}

/// Whether `op` is one of these syscalls.
pub fn is_storage_op(op: &str) -> bool {
    op.starts_with("1.0/storage")
}

pub async fn run(engine: Engine, op: &str, args: Json) -> SyscallResult {
    match op {
        "1.0/storageGenerateUploadUrl" => Ok(json!(engine.files().upload_url())),
        "1.0/storageGetUrl" => {
            let doc = table::resolve(&mut engine.begin_system(), storage_id_arg(&args, "getUrl")?, "getUrl")?;
            Ok(doc.map(|d| json!(engine.files().url_of(&d))).unwrap_or(Json::Null))
        }
        "1.0/storageGetMetadata" => {
            let doc = table::resolve(&mut engine.begin_system(), storage_id_arg(&args, "getMetadata")?, "getMetadata")?;
            Ok(doc.as_ref().map(table::metadata).unwrap_or(Json::Null))
        }
        "1.0/storageDelete" => {
            let id = storage_id_arg(&args, "delete")?;
            engine.transact(|txn| table::delete(txn, id)).await?;
            Ok(Json::Null)
        }
        "1.0/storageStore" => store(engine, &args).await,
        "1.0/storageGet" => get(engine, storage_id_arg(&args, "get")?).await,
        _ => Err(SyscallError::new(format!("Unsupported syscall `{op}` in actions"))),
    }
}

async fn store(engine: Engine, args: &Json) -> SyscallResult {
    let bytes = BASE64
        .decode(args["blob"].as_str().unwrap_or_default())
        .map_err(|e| SyscallError::new(format!("storage.store: the blob is not valid base64: {e}")))?;
    let expected_sha256 = match args["sha256"].as_str() {
        Some(s) => Some(parse_sha256(s).ok_or_else(|| SyscallError::new("storage.store: `sha256` must be a base64 SHA-256 digest"))?),
        None => None,
    };
    let content_type = args["contentType"].as_str().filter(|t| !t.is_empty()).map(str::to_owned);
    let body = futures::stream::iter([Ok::<_, std::convert::Infallible>(bytes)]);
    let upload = Upload { body, content_type, expected_sha256, grant: None };
    Ok(json!(engine.store_file(upload).await?.encode()))
}

async fn get(engine: Engine, storage_id: &str) -> SyscallResult {
    let Some((doc, mut file)) = engine.open_file(storage_id)? else { return Ok(Json::Null) };
    let size = table::size(&doc);
    if size > MAX_ACTION_FILE {
        return Err(SyscallError::new(format!(
            "storage.get: the file has {size} bytes, more than an action can hold ({MAX_ACTION_FILE}); serve it with storage.getUrl instead"
        )));
    }
    let bytes = tokio::task::spawn_blocking(move || {
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes).map(|_| bytes)
    })
    .await
    .map_err(|e| SyscallError::new(e.to_string()))?
    .map_err(|e| SyscallError::new(format!("storage.get: reading the file failed: {e}")))?;
    Ok(json!({ "blob": BASE64.encode(bytes), "contentType": table::content_type(&doc) }))
}
