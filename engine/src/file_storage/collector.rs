//! Collecting blobs no `_storage` document refers to. Each commit that
//! changes `_storage.by_blob` names the blobs it stopped (or started)
//! referring to; those are checked right after it, at the latest snapshot, so a
//! deleted file's bytes go within moments. A store that failed after its
//! blob was written names its blob directly. A pass over every blob runs at
//! start (after a crash between a blob's rename and its document's commit)
//! and then hourly, which also forgets used upload tokens once they expired.
//! Why this is safe with uploads in flight: see `BlobStore::collect`.

use super::table;
use crate::engine::Engine;
use crate::committer::CommitSummary;
use crate::types::IndexId;
use convect_schema::{decode_index_key, Value};
use std::collections::BTreeSet;
use std::io;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

const FULL_PASS_EVERY: Duration = Duration::from_secs(3600);
/// Used-token records deleted per transaction while pruning.
const PRUNE_BATCH: usize = 1000;

/// Starts the collector task; call inside a tokio runtime, once per engine.
pub fn start_collector(engine: Engine) {
    let Some(mut orphans) = engine.files().orphans_rx.lock().expect("orphans lock poisoned").take() else { return };
    let Some(by_blob) = blob_index(&engine) else {
        tracing::error!("the _storage table has no by_blob index; file bytes will not be collected");
        return;
    };
    let mut commits = engine.committer().subscribe_commits();
    tokio::spawn(async move {
        let mut full_pass = tokio::time::interval(FULL_PASS_EVERY);
        loop {
            let candidates = tokio::select! {
                _ = full_pass.tick() => {
                    full(&engine).await;
                    continue;
                }
                orphan = orphans.recv() => orphan.into_iter().collect(),
                commit = commits.recv() => match commit {
                    Ok(summary) => {
                        // Commits are announced before they are readable.
                        engine.committer().wait_for(summary.ts).await;
                        named_blobs(&summary, by_blob)
                    }
                    Err(RecvError::Lagged(_)) => {
                        full(&engine).await;
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
            };
            if !candidates.is_empty() {
                report(collect(&engine, Some(&candidates)).await, "collecting file bytes");
            }
        }
    });
}

fn blob_index(engine: &Engine) -> Option<IndexId> {
    let catalog = engine.inner.catalog.read().expect("catalog poisoned");
    let number = catalog.table_number(table::STORAGE)?;
    catalog.indexes(number).iter().find(|i| i.fields.first().map(String::as_str) == Some(table::BLOB)).map(|i| i.id)
}

/// The blobs whose `by_blob` keys a commit wrote.
fn named_blobs(summary: &CommitSummary, by_blob: IndexId) -> BTreeSet<String> {
    let keys = summary.written_keys.iter().filter(|(index, _)| *index == by_blob);
    keys.filter_map(|(_, key)| match decode_index_key(key).ok()?.into_iter().next()? {
        Some(Value::String(blob)) => Some(blob),
        _ => None,
    })
    .collect()
}

async fn full(engine: &Engine) {
    report(collect(engine, None).await, "collecting file bytes");
    let now = crate::udf::now_ms() as u64;
    loop {
        match engine.transact(|txn| table::prune_tokens(txn, now, PRUNE_BATCH)).await {
            Ok((n, _)) if n == PRUNE_BATCH => continue,
            Ok(_) => return,
            Err(e) => return report(Err(io::Error::other(e)), "forgetting expired upload tokens"),
        }
    }
}

/// Deletes the unreferenced among `candidates` (every blob with `None`) on a
/// blocking thread: it walks directories and waits for uploads' pins.
async fn collect(engine: &Engine, candidates: Option<&BTreeSet<String>>) -> io::Result<usize> {
    let engine = engine.clone();
    let candidates = candidates.cloned();
    tokio::task::spawn_blocking(move || {
        let is_referenced = |blob: &str| {
            let mut txn = engine.begin_system();
            table::is_referenced(&mut txn, blob).map_err(io::Error::other)
        };
        let blobs = &engine.files().blobs;
        match &candidates {
            Some(c) => blobs.collect_candidates(c.iter().map(String::as_str), is_referenced),
            None => blobs.collect(is_referenced),
        }
    })
    .await
    .map_err(io::Error::other)?
}

fn report(result: io::Result<usize>, what: &str) {
    match result {
        Ok(0) => {}
        Ok(n) => tracing::info!(deleted = n, "{what}"),
        Err(error) => tracing::warn!(%error, "{what} failed"),
    }
}
