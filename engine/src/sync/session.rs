//! One WebSocket connection of the sync protocol. The session keeps the client's
//! `StateVersion`, gathers changed query results from the hub, and sends them as
//! Transitions that only move forward; it answers mutations and actions, and
//! after a mutation it moves the client to (at least) the mutation's timestamp so
//! that `await client.mutation(...)` resolves with the write already visible.
//! Like Convex, it follows every mutation and action response with a Transition,
//! which clients built on the Rust crate need to complete a failed mutation.
//! `Authenticate` with the admin key makes the session's calls admin calls (they
//! reach internal functions); refused credentials end the connection with an
//! `AuthError`, as Convex does.

use super::hub::{LiveQuery, SessionUpdate, SyncHub};
use super::protocol::{
    auth_error, encode_ts, removed, transition, ClientMessage, ClientVersion, QueryId, QueryOutcome, QuerySetChange,
    StateVersion,
};
use super::requests::{RequestKey, RequestLog};
use crate::engine::Engine;
use crate::runtime::{CallerIdentity, UdfKind};
use crate::types::Timestamp;
use crate::udf::{client_message, CallError, CallResult, Caller, SystemError};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value as Json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages waiting to be written to a client; past this the client is too slow
/// and is disconnected (its reconnect starts from a fresh snapshot).
const OUTBOUND_CAPACITY: usize = 512;
/// Hub updates waiting for this session.
const UPDATE_CAPACITY: usize = 256;
const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long a closing session waits for its last messages to be written; a
/// stalled client is not waited for beyond this.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Transitions larger than this go out as `TransitionChunk`s.
const CHUNK_BYTES: usize = 1 << 20;

struct Done {
    kind: UdfKind,
    request_id: u32,
    path: String,
    result: CallResult,
}

struct Session {
    engine: Engine,
    hub: SyncHub,
    requests: RequestLog,
    admin_key: Arc<String>,
    /// Whether the client reassembles `TransitionChunk`s.
    chunked: bool,
    id: u64,
    client_session: String,
    /// Who the client's calls and queries run as, set by `Authenticate`.
    caller: Caller,
    /// The user they run for (a verified token's, or one an admin acts as).
    user: CallerIdentity,
    /// When that user's token expires (Unix seconds), if it does.
    user_expires: Option<u64>,
    version: StateVersion,
    /// The identity version of the latest accepted `Authenticate`; the next
    /// Transition moves the client to it.
    identity: u32,
    queries: HashMap<QueryId, LiveQuery>,
    pending: BTreeMap<QueryId, QueryOutcome>,
    pending_ts: Timestamp,
    /// A timestamp the client must be sent a Transition at (or after): a
    /// mutation's commit, or the current one after any other response.
    awaiting: Option<Timestamp>,
    out: mpsc::Sender<Message>,
    transitions_sent: u64,
    updates: mpsc::Receiver<SessionUpdate>,
    done: mpsc::UnboundedSender<Done>,
}

/// Why a session ends.
enum End {
    Closed,
    Fatal(String),
    Auth(AuthRefused),
    /// The user's token expired during the session.
    TokenExpired,
    /// A mutation failed with a system error: as Convex does, the connection is
    /// closed with "try again later", and the client reconnects and re-sends the
    /// mutation (the request log did not keep its outcome).
    Retry(Box<SystemError>),
}

/// Resolves when a token expiring at `expires` (Unix seconds) is no longer
/// valid, with the leeway token checks allow; never without one.
async fn token_expiry(expires: Option<u64>) {
    let Some(expires) = expires else { return std::future::pending().await };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let left = (expires + crate::auth::LEEWAY_SECS).saturating_sub(now);
    tokio::time::sleep(std::time::Duration::from_secs(left)).await;
}

/// The WebSocket close code for "try again later" (RFC 6455's 1013).
const CLOSE_TRY_AGAIN: u16 = 1013;

/// Why an `Authenticate` is refused.
#[derive(Debug, thiserror::Error)]
enum AuthRefused {
    #[error("The admin key is not valid for this deployment.")]
    InvalidAdminKey,
    #[error("The identity to act as is not base64-encoded JSON of an object")]
    InvalidActingAs,
    /// A user token that did not verify, with the reason (expired, unknown key...).
    #[error("{0}")]
    Token(String),
}

pub async fn serve(
    socket: WebSocket,
    engine: Engine,
    hub: SyncHub,
    requests: RequestLog,
    admin_key: Arc<String>,
    client: ClientVersion,
) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut out_rx) = mpsc::channel::<Message>(OUTBOUND_CAPACITY);
    let mut writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let (id, updates) = hub.register(UPDATE_CAPACITY);
    let (done, mut done_rx) = mpsc::unbounded_channel();
    let mut processed = hub.processed();
    let mut s = Session {
        engine,
        hub: hub.clone(),
        requests,
        admin_key,
        chunked: client.understands_transition_chunks(),
        id,
        client_session: String::new(),
        caller: Caller::Client,
        user: CallerIdentity::Anonymous,
        user_expires: None,
        version: StateVersion::default(),
        identity: 0,
        queries: HashMap::new(),
        pending: BTreeMap::new(),
        pending_ts: 0,
        awaiting: None,
        out,
        transitions_sent: 0,
        updates,
        done,
    };
    let mut ping = tokio::time::interval(PING_INTERVAL);
    let end = loop {
        let step = tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => s.on_message(&text).await,
                Some(Ok(Message::Binary(_))) => Err(End::Fatal("binary messages are not part of the protocol".into())),
                Some(Ok(_)) => Ok(()),
                Some(Err(_)) | None => Err(End::Closed),
            },
            update = s.updates.recv() => match update {
                Some(u) => { s.absorb(u); s.flush(None, Vec::new(), *processed.borrow()) }
                None => Err(End::Fatal("the client fell too far behind".into())),
            },
            // Only a session waiting to move its client past a mutation needs the
            // processed timestamp; waking every idle session per commit is O(clients).
            _ = processed.changed(), if s.awaiting.is_some() => {
                let ts = *processed.borrow_and_update();
                s.flush(None, Vec::new(), ts)
            }
            Some(d) = done_rx.recv() => s.on_done(d, *processed.borrow()),
            _ = ping.tick() => s.send(json!({ "type": "Ping" })),
            _ = token_expiry(s.user_expires) => Err(End::TokenExpired),
        };
        if let Err(end) = step {
            break end;
        }
    };
    let last = match end {
        End::Closed => None,
        End::Fatal(reason) => {
            tracing::info!(session = id, reason, "closing sync session");
            Some(Message::Text(json!({ "type": "FatalError", "error": reason }).to_string().into()))
        }
        End::Auth(refused) => {
            tracing::info!(session = id, reason = %refused, "refused credentials; closing sync session");
            Some(Message::Text(auth_error(&refused.to_string(), s.identity, true).to_string().into()))
        }
        End::TokenExpired => {
            tracing::info!(session = id, "the session's token expired; closing sync session");
            Some(Message::Text(auth_error("Token expired", s.identity, false).to_string().into()))
        }
        End::Retry(e) => {
            tracing::info!(session = id, code = e.code(), error = %e, "a mutation failed with a system error; closing sync session");
            // The client picks its reconnect backoff by the reason, Convex's code.
            Some(Message::Close(Some(CloseFrame { code: CLOSE_TRY_AGAIN, reason: e.code().into() })))
        }
    };
    if let Some(message) = last {
        let _ = s.out.try_send(message);
    }
    hub.disconnect(id);
    drop(s);
    // Dropping the writer (with its half of the socket) closes the connection even
    // when the client stopped reading and a write is stuck.
    if tokio::time::timeout(CLOSE_GRACE, &mut writer).await.is_err() {
        writer.abort();
    }
}

impl Session {
    fn send(&self, message: Json) -> Result<(), End> {
        self.send_text(message.to_string())
    }

    fn send_text(&self, text: String) -> Result<(), End> {
        self.out
            .try_send(Message::Text(text.into()))
            .map_err(|_| End::Fatal("the client is not reading its messages fast enough".into()))
    }

    /// Sends a Transition, split into ordered chunks when it is large.
    fn send_transition(&mut self, message: Json) -> Result<(), End> {
        let text = message.to_string();
        self.transitions_sent += 1;
        if text.len() <= CHUNK_BYTES || !self.chunked {
            return self.send_text(text);
        }
        let parts = split_utf8(&text, CHUNK_BYTES);
        let transition_id = format!("{}-{}", self.id, self.transitions_sent);
        for (n, chunk) in parts.iter().enumerate() {
            self.send(json!({
                "type": "TransitionChunk",
                "chunk": chunk,
                "partNumber": n,
                "totalParts": parts.len(),
                "transitionId": transition_id,
            }))?;
        }
        Ok(())
    }

    async fn on_message(&mut self, text: &str) -> Result<(), End> {
        let message: ClientMessage =
            serde_json::from_str(text).map_err(|e| End::Fatal(format!("malformed client message: {e}")))?;
        match message {
            ClientMessage::Connect { session_id, .. } => {
                self.client_session = session_id;
                Ok(())
            }
            ClientMessage::ModifyQuerySet { base_version, new_version, modifications } => {
                self.modify_query_set(base_version, new_version, modifications).await
            }
            ClientMessage::Mutation { request_id, udf_path, args } => {
                self.start_call(UdfKind::Mutation, request_id, udf_path, args);
                Ok(())
            }
            ClientMessage::Action { request_id, udf_path, args } => {
                self.start_call(UdfKind::Action, request_id, udf_path, args);
                Ok(())
            }
            ClientMessage::Authenticate { token_type, base_version, value, impersonating } => {
                self.authenticate(&token_type, base_version, value.as_deref(), impersonating).await
            }
            ClientMessage::Event {} => Ok(()),
        }
    }

    async fn modify_query_set(&mut self, base: u32, new: u32, changes: Vec<QuerySetChange>) -> Result<(), End> {
        if base != self.version.query_set {
            return Err(End::Fatal(format!("query set version {base} does not match the server's {}", self.version.query_set)));
        }
        let mut gone = Vec::new();
        for change in changes {
            match change {
                QuerySetChange::Add { query_id, udf_path, args, journal } => {
                    let args = args.into_iter().next().unwrap_or(Json::Null);
                    let (caller, identity) = (self.caller, self.user.clone());
                    self.subscribe(query_id, LiveQuery { path: udf_path, args, journal, caller, identity }).await?;
                }
                QuerySetChange::Remove { query_id } => {
                    self.hub.unsubscribe(self.id, query_id);
                    self.queries.remove(&query_id);
                    self.pending.remove(&query_id);
                    gone.push(query_id);
                }
            }
        }
        self.flush(Some(new), gone, 0)
    }

    async fn subscribe(&mut self, query_id: QueryId, query: LiveQuery) -> Result<(), End> {
        let Some((outcome, ts)) = self.hub.subscribe(self.id, query_id, query.clone()).await else {
            return Err(End::Fatal("the server is shutting down".into()));
        };
        // A query id subscribed again (under a new caller) may have updates of its
        // previous subscription queued; the hub sent them before it answered, so
        // they are older than `outcome` and must not overwrite it.
        self.drain_updates();
        self.queries.insert(query_id, query);
        self.pending.insert(query_id, outcome);
        self.pending_ts = self.pending_ts.max(ts);
        Ok(())
    }

    async fn authenticate(&mut self, token_type: &str, base: u32, value: Option<&str>, acting_as: Option<Json>) -> Result<(), End> {
        if base != self.identity {
            return Err(End::Fatal(format!("identity version {base} does not match the server's {}", self.identity)));
        }
        let mut expires = None;
        let (caller, user) = match token_type {
            "None" => (Caller::Client, CallerIdentity::Anonymous),
            "Admin" => self.admin_caller(value.unwrap_or_default(), acting_as).map_err(End::Auth)?,
            "User" => match self.engine.deployment().auth.verify(value.unwrap_or_default()).await {
                Ok(identity) => {
                    expires = identity.expires_at;
                    (Caller::Client, CallerIdentity::User(Arc::new(identity.json)))
                }
                Err(e) => return Err(End::Auth(AuthRefused::Token(e.to_string()))),
            },
            other => return Err(End::Fatal(format!("unknown token type {other:?}"))),
        };
        self.identity = base + 1;
        self.user_expires = expires;
        if (caller, &user) != (self.caller, &self.user) {
            (self.caller, self.user) = (caller, user);
            self.resubscribe_all().await?;
        }
        self.flush(None, Vec::new(), 0)
    }

    /// Checks an admin token: the admin key, optionally followed by
    /// `:<base64 identity>` (or sent with a separate identity) to act as a user.
    fn admin_caller(&self, token: &str, acting_as: Option<Json>) -> Result<(Caller, CallerIdentity), AuthRefused> {
        let (key, encoded) = match token.split_once(':') {
            Some((key, identity)) => (key, Some(identity)),
            None => (token, None),
        };
        if !crate::server::constant_time_eq(key.as_bytes(), self.admin_key.as_bytes()) {
            return Err(AuthRefused::InvalidAdminKey);
        }
        let acting_as = match encoded {
            Some(encoded) => Some(crate::server::acting_as_identity(encoded).ok_or(AuthRefused::InvalidActingAs)?),
            None => acting_as.filter(|a| !a.is_null()).map(|mut identity| {
                crate::server::with_token_identifier(&mut identity);
                identity
            }),
        };
        let user = match acting_as {
            Some(identity) if identity.is_object() => CallerIdentity::User(Arc::new(identity)),
            Some(_) => return Err(AuthRefused::InvalidActingAs),
            None => CallerIdentity::Anonymous,
        };
        Ok((Caller::Admin, user))
    }

    /// Results depend on who asks (internal functions exist only for an admin),
    /// so a new identity re-runs every query, as Convex does.
    async fn resubscribe_all(&mut self) -> Result<(), End> {
        let (caller, identity) = (self.caller, self.user.clone());
        let queries: Vec<(QueryId, LiveQuery)> =
            self.queries.iter().map(|(id, q)| (*id, LiveQuery { caller, identity: identity.clone(), ..q.clone() })).collect();
        for (query_id, query) in queries {
            self.subscribe(query_id, query).await?;
        }
        Ok(())
    }

    fn start_call(&self, kind: UdfKind, request_id: u32, path: String, args: Vec<Json>) {
        let (caller, identity) = (self.caller, self.user.clone());
        let engine = self.engine.clone();
        let requests = self.requests.clone();
        let done = self.done.clone();
        let key = RequestKey { session: self.client_session.clone(), request_id };
        tokio::spawn(async move {
            let args = args.into_iter().next().unwrap_or(Json::Null);
            let run = async { engine.call(&path, Some(kind), args, caller, identity).await };
            // Mutations re-sent after a reconnect must not apply twice.
            let result = match kind {
                UdfKind::Mutation => requests.run_once(key, run).await,
                _ => run.await,
            };
            let _ = done.send(Done { kind, request_id, path, result });
        });
    }

    fn on_done(&mut self, d: Done, processed: Timestamp) -> Result<(), End> {
        // Mutations are idempotent by request id, so the client can safely
        // re-send one that failed for the system's sake; actions are not, so
        // their system errors are answered like any failure.
        if let (UdfKind::Mutation, Err(CallError { system: Some(e), .. })) = (d.kind, &d.result.value) {
            return Err(End::Retry(e.clone()));
        }
        let kind = if d.kind == UdfKind::Mutation { "MutationResponse" } else { "ActionResponse" };
        let mut message = json!({ "type": kind, "requestId": d.request_id, "logLines": d.result.log_lines });
        // Convex sends a Transition after every response. Clients built on the
        // Rust crate depend on it: they complete a mutation that failed with a
        // ConvexError only at the next Transition.
        let mut settle_at = self.version.ts;
        match d.result.value {
            Ok(value) => {
                message["success"] = json!(true);
                message["result"] = value;
                if let (UdfKind::Mutation, Some(ts)) = (d.kind, d.result.ts) {
                    message["ts"] = json!(encode_ts(ts));
                    settle_at = ts;
                }
            }
            Err(e) => {
                message["success"] = json!(false);
                message["result"] = json!(client_message(&d.path, &e.message));
                if let Some(data) = e.data {
                    message["errorData"] = data;
                }
            }
        }
        self.awaiting = Some(self.awaiting.unwrap_or(0).max(settle_at));
        self.send(message)?;
        self.flush(None, Vec::new(), processed)
    }

    fn absorb(&mut self, update: SessionUpdate) {
        self.pending_ts = self.pending_ts.max(update.ts);
        for (query_id, outcome) in update.changes {
            if self.queries.contains_key(&query_id) {
                self.pending.insert(query_id, outcome);
            }
        }
    }

    fn drain_updates(&mut self) {
        while let Ok(u) = self.updates.try_recv() {
            self.absorb(u);
        }
    }

    /// Sends a Transition if there is anything to tell the client: changed
    /// results, a new query set or identity, or a timestamp it is waiting for.
    fn flush(&mut self, query_set: Option<u32>, gone: Vec<QueryId>, processed: Timestamp) -> Result<(), End> {
        self.drain_updates();
        let ts = self.version.ts.max(self.pending_ts).max(processed);
        let reached = self.awaiting.is_some_and(|t| ts >= t);
        let new_identity = self.identity != self.version.identity;
        if self.pending.is_empty() && query_set.is_none() && !reached && !new_identity {
            return Ok(());
        }
        let mut modifications: Vec<Json> = gone.into_iter().map(removed).collect();
        for (id, outcome) in std::mem::take(&mut self.pending) {
            let path = self.queries.get(&id).map_or("", |q| q.path.as_str());
            modifications.push(outcome.modification(id, |message| client_message(path, message)));
        }
        let end = StateVersion { query_set: query_set.unwrap_or(self.version.query_set), identity: self.identity, ts };
        let message = transition(self.version, end, modifications);
        self.version = end;
        if reached {
            self.awaiting = None;
        }
        self.send_transition(message)
    }
}

/// Splits `text` into pieces of at most `max` bytes, on character boundaries.
fn split_utf8(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let cut = rest.floor_char_boundary(max.min(rest.len()));
        let cut = if cut == 0 { rest.ceil_char_boundary(1) } else { cut };
        let (part, tail) = rest.split_at(cut);
        parts.push(part);
        rest = tail;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::split_utf8;

    #[test]
    fn splits_on_char_boundaries_and_rejoins() {
        let text = "aé€😀".repeat(1000);
        for max in [1, 2, 3, 5, 64, 1 << 20] {
            let parts = split_utf8(&text, max);
            assert_eq!(parts.concat(), text);
            assert!(parts.iter().all(|p| p.len() <= max.max(4) && !p.is_empty()));
        }
    }
}
