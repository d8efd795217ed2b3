//! Imports: a batch of documents written to one table in one transaction,
//! optionally upserting by a key field. A batch either commits whole or not at
//! all; with `dry_run` it is checked (schema, limits) and discarded, so a client
//! can validate every batch of a file before committing the first.

use crate::committer::CommitError;
use crate::engine::Engine;
use crate::query::QueryStream;
use crate::storage::KeyRange;
use crate::txn::{Transaction, TxnError};
use crate::types::{Document, Order};
use convect_schema::{object_from_json, Value};
use std::collections::{BTreeMap, HashMap};

const MAX_ATTEMPTS: u32 = 16;

#[derive(Debug, serde::Deserialize)]
pub struct ImportRequest {
    pub table: String,
    pub documents: Vec<serde_json::Value>,
    #[serde(rename = "upsertBy")]
    pub upsert_by: Option<String>,
    #[serde(rename = "dryRun", default)]
    pub dry_run: bool,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct ImportSummary {
    pub inserted: usize,
    pub updated: usize,
    pub unchanged: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("record {index}: {message}")]
    Record { index: usize, message: String },
    #[error("{0}")]
    Failed(String),
}

impl Engine {
    pub async fn import(&self, request: ImportRequest) -> Result<ImportSummary, ImportError> {
        let request = std::sync::Arc::new(request);
        for _ in 0..MAX_ATTEMPTS {
            let engine = self.clone();
            let req = request.clone();
            // Table creation blocks on the committer, so stage the batch off the async runtime.
            let staged = tokio::task::spawn_blocking(move || engine.stage_import(&req))
                .await
                .map_err(|e| ImportError::Failed(format!("import crashed: {e}")))??;
            let (txn, summary) = staged;
            if request.dry_run {
                return Ok(summary);
            }
            match self.inner.committer.commit(txn.prepare()).await {
                Ok(_) => return Ok(summary),
                Err(CommitError::Conflict { retry_after, .. }) => self.inner.committer.wait_for(retry_after).await,
                Err(e) => return Err(ImportError::Failed(e.to_string())),
            }
        }
        Err(ImportError::Failed("the import kept conflicting with concurrent writes; try again".into()))
    }

    fn stage_import(&self, req: &ImportRequest) -> Result<(Transaction, ImportSummary), ImportError> {
        let mut txn = self.begin_system();
        let failed = |e: TxnError| ImportError::Failed(e.to_string());
        let mut existing = match &req.upsert_by {
            Some(field) => Existing::new(&mut txn, &req.table, field).map_err(failed)?,
            None => Existing::default(),
        };
        let mut summary = ImportSummary::default();
        for (index, json) in req.documents.iter().enumerate() {
            let record = |message: String| ImportError::Record { index, message };
            let mut doc = object_from_json(json).map_err(|e| record(e.to_string()))?;
            doc.remove("_id");
            doc.remove("_creationTime");
            let key = match &req.upsert_by {
                Some(field) => Some(doc.get(field).cloned().ok_or_else(|| record(format!("missing the upsert key field `{field}`")))?),
                None => None,
            };
            let found = match &key {
                Some(k) => existing.get(&mut txn, k).map_err(failed)?,
                None => None,
            };
            let written = match found {
                Some(old) if user_fields(&old) == doc => {
                    summary.unchanged += 1;
                    continue;
                }
                Some(old) => {
                    txn.replace(old.id, doc).map_err(|e| record(e.to_string()))?;
                    summary.updated += 1;
                    old.id
                }
                None => {
                    summary.inserted += 1;
                    txn.insert(&req.table, doc).map_err(|e| record(e.to_string()))?
                }
            };
            // A repeated key later in the batch compares against this version.
            if let (Some(k), Some(d)) = (key, txn.get(written).map_err(failed)?) {
                existing.remember(k, d);
            }
        }
        Ok((txn, summary))
    }
}

fn user_fields(doc: &Document) -> BTreeMap<String, Value> {
    doc.value.iter().filter(|(k, _)| *k != "_id" && *k != "_creationTime").map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// How an upsert finds the existing document with a key: through an index that
/// starts with the key field (reading only the documents involved), or else by
/// reading the whole table once.
#[derive(Default)]
struct Existing {
    index: Option<(String, String)>,
    known: HashMap<Value, Document>,
}

impl Existing {
    fn new(txn: &mut Transaction, table: &str, field: &str) -> Result<Existing, TxnError> {
        let catalog = txn.catalog();
        let Some(number) = catalog.table_number(table) else { return Ok(Existing::default()) };
        let index = catalog.indexes(number).iter().find(|i| i.fields.first().map(String::as_str) == Some(field)).map(|i| i.name.clone());
        drop(catalog);
        if let Some(name) = index {
            return Ok(Existing { index: Some((format!("{table}.{name}"), field.to_owned())), known: HashMap::new() });
        }
        let mut known = HashMap::new();
        let by_id = txn.catalog().index(number, crate::catalog::BY_ID).cloned();
        let mut range = by_id.as_ref().map(|_| KeyRange::all());
        while let (Some(index), Some(r)) = (&by_id, range) {
            let (docs, rest) = txn.scan(index, &r, Order::Asc, 1024)?;
            for (_, doc) in docs {
                if let Some(v) = doc.value.get(field).cloned() {
                    known.insert(v, doc);
                }
            }
            range = rest;
        }
        Ok(Existing { index: None, known })
    }

    fn get(&mut self, txn: &mut Transaction, key: &Value) -> Result<Option<Document>, TxnError> {
        if let Some(doc) = self.known.get(key) {
            return Ok(Some(doc.clone()));
        }
        let Some((index, field)) = &self.index else { return Ok(None) };
        let query = serde_json::json!({
            "source": { "type": "IndexRange", "indexName": index, "order": "asc",
                        "range": [{ "type": "Eq", "fieldPath": field, "value": key.to_json() }] },
            "operators": [{ "limit": 1 }],
        });
        let found = QueryStream::open(txn, &query)?.next(txn)?;
        if let Some(doc) = &found {
            self.known.insert(key.clone(), doc.clone());
        }
        Ok(found)
    }

    fn remember(&mut self, key: Value, doc: Document) {
        self.known.insert(key, doc);
    }
}
