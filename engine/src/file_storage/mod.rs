//! File storage, as Convex's `ctx.storage` and upload URLs offer it. This
//! module owns the bytes (`blobs.rs`: content-addressed files under
//! `<data>/files/`), the upload tokens (`tokens.rs`), the `_storage` and
//! `_upload_tokens` system tables (`table.rs`) and collecting bytes nothing
//! refers to any more (`collector.rs`). The HTTP endpoints (`server/files.rs`)
//! and the syscalls (`udf/`) call in here.
//!
//! A file is stored in two steps: its bytes become a blob (temp file, fsync,
//! rename), then a transaction records its `_storage` document. The blob is
//! pinned in between, so collection cannot take it; a crash in between leaves
//! a blob no document names, which the collector removes at the next start.
//! Nothing can see a file before its document commits.

pub mod blobs;
mod collector;
pub mod table;
pub mod tokens;

pub use collector::start_collector;

use crate::engine::Engine;
use crate::udf::now_ms;
use crate::txn::TxnError;
use crate::types::Document;
use blobs::BlobStore;
use convect_schema::DocumentId;
use futures::{Stream, StreamExt};
use std::io;
use std::path::Path;
use std::time::Duration;
use table::NewFile;
use tokens::{Grant, TokenError, UploadTokens};

#[derive(Debug, Clone)]
pub struct FileStorageOptions {
    /// Largest file an upload URL or `store` accepts, in bytes.
    pub max_file_size: u64,
    /// How long an upload URL stays valid (Convex: one hour).
    pub upload_url_ttl: Duration,
}

impl Default for FileStorageOptions {
    fn default() -> Self {
        FileStorageOptions { max_file_size: 5 << 30, upload_url_ttl: Duration::from_secs(3600) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the file is larger than this deployment's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file's SHA-256 digest does not match the one given")]
    DigestMismatch,
    #[error("this upload URL was already used; generate a new one")]
    TokenUsed,
    #[error("reading the upload failed: {0}")]
    Body(String),
    #[error("storing the file failed: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Txn(#[from] TxnError),
}

pub struct FileStorage {
    pub blobs: BlobStore,
    tokens: UploadTokens,
    cloud_url: String,
    pub options: FileStorageOptions,
    /// Blobs to check after a failed store (see `collector.rs`).
    orphans: tokio::sync::mpsc::UnboundedSender<String>,
    orphans_rx: std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<String>>>,
}

impl FileStorage {
    /// Opens `dir` (`<data>/files`); URLs given out start with `cloud_url`.
    pub fn open(dir: &Path, cloud_url: &str, options: FileStorageOptions) -> io::Result<FileStorage> {
        let blobs = BlobStore::open(dir)?;
        let tokens = UploadTokens::open(&dir.join("upload_key"), options.upload_url_ttl)?;
        let (orphans, rx) = tokio::sync::mpsc::unbounded_channel();
        let cloud_url = cloud_url.trim_end_matches('/').to_owned();
        Ok(FileStorage { blobs, tokens, cloud_url, options, orphans, orphans_rx: std::sync::Mutex::new(Some(rx)) })
    }

    /// What `generateUploadUrl` returns.
    pub fn upload_url(&self) -> String {
        format!("{}/api/storage/upload?token={}", self.cloud_url, self.tokens.issue(now_ms() as u64))
    }

    /// What `getUrl` returns for a file.
    pub fn url_of(&self, doc: &Document) -> String {
        format!("{}/api/storage/{}", self.cloud_url, doc.id.encode())
    }

    pub fn check_token(&self, token: &str) -> Result<Grant, TokenError> {
        self.tokens.check(token, now_ms() as u64)
    }
}

/// Parses a `Digest: sha-256=<base64>` header value (or the bare base64 that
/// `store`'s `sha256` option carries).
pub fn parse_sha256(value: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let b64 = value.trim().strip_prefix("sha-256=").unwrap_or(value.trim());
    base64::engine::general_purpose::STANDARD.decode(b64).ok()?.try_into().ok()
}

/// A file being stored: where its bytes come from and what they must match.
pub struct Upload<S> {
    pub body: S,
    pub content_type: Option<String>,
    pub expected_sha256: Option<[u8; 32]>,
    /// The upload URL's token, marked used when the file is recorded.
    pub grant: Option<Grant>,
}

/// Bytes an upload gathers before they are hashed and written, on a blocking
/// thread, while the body waits: memory stays bounded whatever the file's
/// size, a slow disk slows the sender, and a slow sender holds no thread.
const WRITE_BATCH: usize = 1 << 20;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> Result<T, StoreError> {
    Ok(tokio::task::spawn_blocking(f).await.map_err(io::Error::other)??)
}

impl Engine {
    pub fn files(&self) -> &FileStorage {
        &self.inner.files
    }

    /// Stores a file: streams its bytes into a blob, then records it in
    /// `_storage`. Returns its storage id.
    pub async fn store_file<S, B, E>(&self, upload: Upload<S>) -> Result<DocumentId, StoreError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]> + Send + 'static,
        E: std::fmt::Display,
    {
        let Upload { body, content_type, expected_sha256, grant } = upload;
        let stored = self.write_blob(body).await?;
        let forget = |e: StoreError| {
            // Its bytes may be named by nothing now; let the collector look.
            let _ = self.files().orphans.send(stored.blake3.clone());
            e
        };
        if expected_sha256.is_some_and(|d| d != stored.sha256) {
            return Err(forget(StoreError::DigestMismatch));
        }
        let file = NewFile { blob: stored.blake3.clone(), sha256: stored.sha256, size: stored.size, content_type };
        let recorded = self.transact(|txn| table::record(txn, &file, grant.as_ref())).await;
        match recorded {
            Ok((Some(id), _)) => Ok(id),
            Ok((None, _)) => Err(forget(StoreError::TokenUsed)),
            Err(e) => Err(forget(e.into())),
        }
        // `stored` unpins here, after the document committed.
    }

    async fn write_blob<S, B, E>(&self, mut body: S) -> Result<blobs::StoredBlob, StoreError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]> + Send + 'static,
        E: std::fmt::Display,
    {
        let limit = self.files().options.max_file_size;
        let mut writer = self.files().blobs.writer()?;
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        let mut size = 0u64;
        // Returning early drops the writer, which removes its temp file.
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| StoreError::Body(e.to_string()))?;
            size += chunk.as_ref().len() as u64;
            if size > limit {
                return Err(StoreError::TooLarge { limit });
            }
            batch.extend_from_slice(chunk.as_ref());
            if batch.len() >= WRITE_BATCH {
                writer = blocking(move || writer.write(&batch).map(|()| writer)).await?;
                batch = Vec::with_capacity(WRITE_BATCH);
            }
        }
        let engine = self.clone();
        blocking(move || {
            writer.write(&batch)?;
            writer.finish(&engine.files().blobs)
        })
        .await
    }

    /// The `_storage` document a storage id names and its open blob, as of now.
    pub fn open_file(&self, storage_id: &str) -> Result<Option<(Document, std::fs::File)>, StoreError> {
        let mut txn = self.begin_system();
        let Some(doc) = table::resolve(&mut txn, storage_id, "get")? else { return Ok(None) };
        let Some(blob) = table::blob(&doc).map(str::to_owned) else { return Ok(None) };
        Ok(self.files().blobs.open_blob(&blob)?.map(|file| (doc, file)))
    }
}
