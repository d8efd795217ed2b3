//! `TxnHost`: the syscalls of queries and mutations, answered from a
//! `Transaction`. Every op completes synchronously: data is local, and keeping
//! queries free of real asynchrony keeps them deterministic.

use super::nested::NestedCalls;
use super::system::SystemError;
use crate::deployment::Deployment;
use crate::engine::Engine;
use crate::file_storage::table as files;
use crate::scheduler::{jobs, schedule_request, ScheduleBudget};
use crate::query::{decode_cursor, encode_cursor, optional_value, Cursor, QueryStream};
use crate::runtime::{CallerIdentity, Completion, Host, SyscallError, SyscallResult};
use crate::txn::{Transaction, TxnError};
use crate::types::Document;
use convect_schema::{object_from_json, DocumentId, Value};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub struct TxnHost {
    pub txn: Transaction,
    pub writable: bool,
    pub journal: Journal,
    streams: HashMap<u64, QueryStream>,
    next_stream: u64,
    nested: NestedCalls,
    deployment: Arc<Deployment>,
    scheduled: ScheduleBudget,
    /// A system error a syscall raised: it fails the call even if the function
    /// caught the exception it saw, as on Convex, where it ends the isolate.
    pub system_error: Option<SystemError>,
    /// For file storage's URLs.
    engine: Engine,
    pub identity: CallerIdentity,
}

/// Where each `paginate` call of an execution ended, in call order. A live query
/// replays the journal of its first execution, so that its pages keep their
/// boundaries (and grow or shrink) as documents come and go.
#[derive(Debug, Default)]
pub struct Journal {
    replay: Vec<String>,
    recorded: Vec<String>,
}

impl Journal {
    pub fn replaying(encoded: Option<&str>) -> Journal {
        let replay = encoded.and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        Journal { replay, recorded: Vec::new() }
    }

    /// The journal to hand back to the client, if the execution paginated.
    pub fn encode(&self) -> Option<String> {
        (!self.recorded.is_empty()).then(|| Json::from(self.recorded.clone()).to_string())
    }
}

impl From<TxnError> for SyscallError {
    fn from(e: TxnError) -> Self {
        SyscallError::new(e.to_string())
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, SyscallError> {
    Err(SyscallError::new(msg))
}

fn doc_json(doc: Option<&Document>) -> Json {
    doc.map(|d| d.visible_value().to_json()).unwrap_or(Json::Null)
}

impl TxnHost {
    pub fn new(txn: Transaction, writable: bool, journal: Journal, deployment: Arc<Deployment>, engine: Engine) -> Self {
        let nested = NestedCalls::new(deployment.clone());
        TxnHost { txn, writable, journal, streams: HashMap::new(), next_stream: 1, nested, deployment, scheduled: ScheduleBudget::default(), system_error: None, engine, identity: CallerIdentity::Anonymous }
    }

    fn id_arg(&self, args: &Json, op: &str) -> Result<DocumentId, SyscallError> {
        let Some(s) = args["id"].as_str() else { return err(format!("Invalid argument `id` for `db.{op}`: expected a string")) };
        let id = DocumentId::decode(s).map_err(|_| SyscallError::new(format!("Invalid argument `id` for `db.{op}`: \"{s}\" is not a valid document ID")))?;
        if let Some(table) = args["table"].as_str() {
            if self.txn.table_name_of(&id).as_deref() != Some(table) {
                return err(format!("Invalid argument `id` for `db.{op}`: \"{s}\" is not an ID of table \"{table}\""));
            }
        }
        Ok(id)
    }

    /// The id of a document to write, which must not be a system table's.
    fn writable_id_arg(&self, args: &Json, op: &str) -> Result<DocumentId, SyscallError> {
        self.require_writable()?;
        let id = self.id_arg(args, op)?;
        if self.txn.table_name_of(&id).is_some_and(|t| t.starts_with('_')) {
            return err("System tables (prefixed with `_`) are read-only.");
        }
        Ok(id)
    }

    /// Records `e` as the call's outcome; the function sees it thrown.
    fn raise(&mut self, e: SystemError) -> SyscallError {
        let thrown = SyscallError::new(format!("{}: {e}", e.code()));
        self.system_error.get_or_insert(e);
        thrown
    }

    fn require_writable(&self) -> Result<(), SyscallError> {
        if self.writable {
            Ok(())
        } else {
            err("Writes are not allowed in queries; use a mutation.")
        }
    }

    fn sync_op(&mut self, op: &str, args: Json) -> SyscallResult {
        match op {
            "1.0/queryStream" => {
                let stream = QueryStream::open(&mut self.txn, &args["query"])?;
                let id = self.next_stream;
                self.next_stream += 1;
                self.streams.insert(id, stream);
                Ok(json!({ "queryId": id }))
            }
            "1.0/queryCleanup" => {
                let id = args["queryId"].as_u64().unwrap_or_default();
                Ok(json!(self.streams.remove(&id).is_some()))
            }
            "1.0/db/normalizeId" => {
                let table = args["table"].as_str().unwrap_or_default();
                let s = args["idString"].as_str().unwrap_or_default();
                if self.txn.catalog().table_number(table).is_none() {
                    // Once the table exists, ids of its documents normalize.
                    self.txn.record_missing_table(table);
                }
                let ok = DocumentId::decode(s).ok().filter(|id| self.txn.table_name_of(id).as_deref() == Some(table));
                Ok(json!({ "id": ok.map(|_| s) }))
            }
            "1.0/getSnapshotTs" => Ok(json!(self.txn.snapshot() as f64)),
            // prelude.js turns `1.0/runUdf` into these two around the call it makes.
            "convect/runUdf/start" => self.nested.start(&self.txn, self.writable, &args),
            "convect/runUdf/finish" => self.nested.finish(&mut self.txn, &args),
            // Convex's test syscalls, which its integration suite calls from
            // mutations: a conflict the function raised itself (so not retried)
            // and an overload.
            "throwOcc" => Err(self.raise(SystemError::Occ { table: None })),
            "throwOverloaded" => Err(self.raise(SystemError::busy())),
            _ => err(format!("Unsupported syscall `{op}` in Convect")),
        }
    }

    fn async_op(&mut self, op: &str, args: Json) -> SyscallResult {
        match op {
            "1.0/get" => {
                let id = self.id_arg(&args, "get")?;
                let system = self.txn.table_name_of(&id).is_some_and(|t| t.starts_with('_'));
                if args["isSystem"].as_bool().is_some_and(|s| s != system) {
                    let (tables, reader) = if system { ("System", "db.system") } else { ("User", "db") };
                    return err(format!("{tables} tables can only be accessed from {reader}.get()."));
                }
                Ok(doc_json(self.txn.get(id)?.as_ref()))
            }
            "1.0/queryStreamNext" => {
                let id = args["queryId"].as_u64().unwrap_or_default();
                let Some(stream) = self.streams.get_mut(&id) else { return err("query stream is closed") };
                let next = stream.next(&mut self.txn)?;
                Ok(json!({ "value": doc_json(next.as_ref()), "done": next.is_none() }))
            }
            "1.0/queryPage" => self.query_page(&args),
            "1.0/count" => Ok(json!(self.txn.count(args["table"].as_str().unwrap_or_default())? as f64)),
            "1.0/insert" => {
                self.require_writable()?;
                let table = args["table"].as_str().unwrap_or_default();
                let value = object_from_json(&args["value"]).map_err(|e| SyscallError::new(e.to_string()))?;
                let id = self.txn.insert(table, value)?;
                Ok(json!({ "_id": id.encode() }))
            }
            "1.0/shallowMerge" => {
                let id = self.writable_id_arg(&args, "patch")?;
                self.txn.patch(id, patch_fields(&args["value"])?)?;
                Ok(Json::Null)
            }
            "1.0/replace" => {
                let id = self.writable_id_arg(&args, "replace")?;
                let mut value = object_from_json(&args["value"]).map_err(|e| SyscallError::new(e.to_string()))?;
                value.remove("_id");
                value.remove("_creationTime");
                self.txn.replace(id, value)?;
                Ok(Json::Null)
            }
            "1.0/remove" => {
                let id = self.writable_id_arg(&args, "delete")?;
                self.txn.delete(id)?;
                Ok(Json::Null)
            }
            "1.0/getUserIdentity" => self.identity.answer(),
            "1.0/storageGetUrl" => {
                let doc = files::resolve(&mut self.txn, storage_id_arg(&args, "getUrl")?, "getUrl")?;
                Ok(doc.map(|d| json!(self.engine.files().url_of(&d))).unwrap_or(Json::Null))
            }
            "1.0/storageGetMetadata" => {
                let doc = files::resolve(&mut self.txn, storage_id_arg(&args, "getMetadata")?, "getMetadata")?;
                Ok(doc.as_ref().map(files::metadata).unwrap_or(Json::Null))
            }
            "1.0/storageGenerateUploadUrl" => {
                self.require_writable()?;
                Ok(json!(self.engine.files().upload_url()))
            }
            "1.0/schedule" => {
                self.require_writable()?;
                let request = schedule_request(&self.deployment, &args).map_err(SyscallError::new)?;
                self.scheduled.spend(&request).map_err(SyscallError::new)?;
                Ok(json!(jobs::insert(&mut self.txn, &request.name, request.args, request.scheduled_ms)?.encode()))
            }
            "1.0/cancel_job" => {
                self.require_writable()?;
                let id = job_id_arg(&args)?;
                jobs::cancel(&mut self.txn, id, super::now_ms())?;
                Ok(Json::Null)
            }
            "1.0/storageDelete" => {
                self.require_writable()?;
                files::delete(&mut self.txn, storage_id_arg(&args, "delete")?)?;
                Ok(Json::Null)
            }
            _ => err(format!("Unsupported syscall `{op}` in Convect")),
        }
    }

    fn query_page(&mut self, args: &Json) -> SyscallResult {
        let mut stream = QueryStream::open(&mut self.txn, &args["query"])?;
        let start = decode_cursor(args["cursor"].as_str())?;
        let replayed = self.journal.replay.get(self.journal.recorded.len()).map(String::as_str);
        let end = decode_cursor(args["endCursor"].as_str().or(replayed))?;
        let page_size = args["pageSize"].as_f64().unwrap_or(0.0).max(0.0) as usize;
        if let Cursor::End = start {
            self.journal.recorded.push(encode_cursor(None));
            return Ok(json!({ "page": [], "isDone": true, "continueCursor": encode_cursor(None), "splitCursor": null, "pageStatus": null }));
        }
        let after = match &start {
            Cursor::After(k) => Some(k.as_slice()),
            _ => None,
        };
        let until = match &end {
            Cursor::After(k) => Some(k.as_slice()),
            _ => None,
        };
        stream.restrict(after, until);
        let bounded = !matches!(end, Cursor::Start);
        let mut page = Vec::new();
        while bounded || page.len() < page_size {
            match stream.next(&mut self.txn)? {
                Some(doc) => page.push(doc_json(Some(&doc))),
                None => break,
            }
        }
        // A page that ends at a cursor is followed by the page that starts there.
        let (is_done, cursor) = match &end {
            Cursor::After(k) => (false, encode_cursor(Some(k))),
            Cursor::End => (true, encode_cursor(None)),
            Cursor::Start if stream.exhausted() => (true, encode_cursor(None)),
            Cursor::Start => (false, encode_cursor(stream.last_key.as_deref().or(after))),
        };
        self.journal.recorded.push(cursor.clone());
        Ok(json!({ "page": page, "isDone": is_done, "continueCursor": cursor, "splitCursor": null, "pageStatus": null }))
    }
}

/// The `id` argument of `ctx.scheduler.cancel`.
pub(crate) fn job_id_arg(args: &Json) -> Result<DocumentId, SyscallError> {
    let id = args["id"].as_str().unwrap_or_default();
    DocumentId::decode(id).map_err(|_| SyscallError::new(format!("Invalid argument `id` for `scheduler.cancel`: \"{id}\" is not a scheduled function's ID")))
}

/// The `storageId` argument of a `ctx.storage` method.
pub(crate) fn storage_id_arg<'a>(args: &'a Json, op: &str) -> Result<&'a str, SyscallError> {
    args["storageId"].as_str().ok_or_else(|| SyscallError::new(format!("Invalid argument `storageId` for `storage.{op}`: expected a string")))
}

/// A patch: fields set to `{"$undefined": null}` are removed.
fn patch_fields(j: &Json) -> Result<BTreeMap<String, Option<Value>>, SyscallError> {
    let Json::Object(o) = j else { return err("patch value must be an object") };
    o.iter()
        .map(|(k, v)| Ok((k.clone(), optional_value(v).map_err(SyscallError::new)?)))
        .collect()
}

impl Host for TxnHost {
    fn syscall(&mut self, op: &str, args: Json) -> SyscallResult {
        self.sync_op(op, args)
    }

    fn async_syscall(&mut self, op: &str, args: Json, done: Completion) {
        done.complete(self.async_op(op, args));
    }
}
