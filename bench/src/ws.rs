//! Minimal clients of Convex's sync protocol (JSON text frames over a
//! WebSocket), enough to subscribe to one query and time its updates. Each
//! client's reading half runs in its own task and reports what it receives,
//! stamped with the time of receipt, on one channel shared by all clients; the
//! writing halves stay with the benchmark, which sends `Connect` and
//! `ModifyQuerySet`.

use anyhow::{bail, Context, Result};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The sync endpoint's protocol version, as `convex` 1.x clients request it.
pub const SYNC_PATH: &str = "/api/1.48.0/sync";
/// Time limit for one connection's TCP connect and WebSocket handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer per client: updates are a few hundred bytes.
const READ_BUFFER: usize = 8 * 1024;

type Ws = WebSocketStream<TcpStream>;

/// What a client received, or what went wrong with it.
#[derive(Debug)]
pub enum Event {
    /// A `QueryUpdated` of query `query_id`; `value` is the result if it is a number.
    Update { client: usize, query_id: u32, value: Option<f64>, at: Instant },
    /// `QueryFailed`, `FatalError`, an unexpected or malformed message, or a connection that ended.
    Problem { client: usize, what: String },
}

pub struct Client {
    sink: SplitSink<Ws, Message>,
    reader: JoinHandle<()>,
    /// The client's query set version (0 before its first `ModifyQuerySet`).
    query_set: u32,
}

impl Drop for Client {
    fn drop(&mut self) {
        // Dropping both halves closes the TCP connection.
        self.reader.abort();
    }
}

/// Where to connect, and the channel clients report on.
pub struct Clients {
    addr: SocketAddr,
    url: String,
    /// A per-run prefix of the session ids, so that reruns never share ids.
    run: u64,
    pub clients: Vec<Client>,
    events: mpsc::UnboundedSender<Event>,
    pub received: mpsc::UnboundedReceiver<Event>,
}

fn modify_query_set(base: u32, query_id: u32, key: &str) -> String {
    json!({
        "type": "ModifyQuerySet",
        "baseVersion": base,
        "newVersion": base + 1,
        "modifications": [{ "type": "Add", "queryId": query_id, "udfPath": "items:byKey", "args": [{ "key": key }] }],
    })
    .to_string()
}

/// Turns one server message into events.
fn on_text(client: usize, text: &str, at: Instant, events: &mpsc::UnboundedSender<Event>) {
    let problem = |what: String| {
        let _ = events.send(Event::Problem { client, what });
    };
    let Ok(message) = serde_json::from_str::<Value>(text) else { return problem(format!("malformed message: {text}")) };
    match message["type"].as_str() {
        Some("Transition") => {
            for m in message["modifications"].as_array().into_iter().flatten() {
                match m["type"].as_str() {
                    Some("QueryUpdated") => {
                        let query_id = m["queryId"].as_u64().unwrap_or(u64::MAX) as u32;
                        let _ = events.send(Event::Update { client, query_id, value: m["value"].as_f64(), at });
                    }
                    Some("QueryRemoved") => {}
                    _ => problem(format!("unexpected modification: {m}")),
                }
            }
        }
        Some("Ping") => {}
        _ => problem(format!("unexpected message: {}", truncate(text, 300))),
    }
}

fn truncate(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

/// One client's reading half: reports until the connection ends (or the task is aborted).
async fn read_loop(client: usize, mut stream: SplitStream<Ws>, events: mpsc::UnboundedSender<Event>) {
    let why = loop {
        match stream.next().await {
            Some(Ok(Message::Text(text))) => on_text(client, text.as_str(), Instant::now(), &events),
            Some(Ok(Message::Close(frame))) => break format!("the server closed the connection: {frame:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => break format!("connection error: {e}"),
            None => break "the connection ended".to_owned(),
        }
    };
    let _ = events.send(Event::Problem { client, what: why });
}

impl Clients {
    /// `url` is the server's `http://127.0.0.1:PORT`.
    pub fn new(url: &str) -> Result<Clients> {
        let host = url.strip_prefix("http://").context("the server URL is not http://")?;
        let addr: SocketAddr = host.parse().with_context(|| format!("not an address: {host}"))?;
        let (events, received) = mpsc::unbounded_channel();
        Ok(Clients {
            addr,
            url: format!("ws://{host}{SYNC_PATH}"),
            run: rand::random::<u64>() & 0xffff_ffff_ffff,
            clients: Vec::new(),
            events,
            received,
        })
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Opens `count` more clients, `batch` at a time (so that connects never
    /// outrun the server's accept backlog), each sending `Connect` and, if `key`
    /// gives it one, subscribing to `items:byKey` with query id 0. Returns once
    /// every new client is connected (not once subscriptions have answered).
    pub async fn open(&mut self, count: usize, batch: usize, key: impl Fn(usize) -> Option<String>) -> Result<()> {
        let first = self.clients.len();
        for start in (first..first + count).step_by(batch.max(1)) {
            let end = (start + batch.max(1)).min(first + count);
            let mut pending = JoinSet::new();
            for id in start..end {
                let connect = connect(self.addr, self.url.clone(), self.session_id(id), key(id));
                pending.spawn(async move { (id, tokio::time::timeout(CONNECT_TIMEOUT, connect).await) });
            }
            let mut opened = Vec::with_capacity(end - start);
            while let Some(joined) = pending.join_next().await {
                let (id, result) = joined.context("a connecting task panicked")?;
                let (sink, stream, query_set) = match result {
                    Ok(Ok(c)) => c,
                    Ok(Err(e)) => bail!("client {id} of {} could not connect: {e:#}", first + count),
                    Err(_) => bail!("client {id} of {} did not connect within {CONNECT_TIMEOUT:?}", first + count),
                };
                opened.push((id, sink, stream, query_set));
            }
            opened.sort_by_key(|c| c.0);
            for (id, sink, stream, query_set) in opened {
                let reader = tokio::spawn(read_loop(id, stream, self.events.clone()));
                self.clients.push(Client { sink, reader, query_set });
            }
        }
        Ok(())
    }

    fn session_id(&self, id: usize) -> String {
        format!("{:08x}-{:04x}-4000-8000-{:012x}", self.run >> 16, self.run & 0xffff, id)
    }

    /// Subscribes clients `range` (each to `key(client)`, query id 0), `batch` at a time.
    pub async fn subscribe(&mut self, range: std::ops::Range<usize>, batch: usize, key: impl Fn(usize) -> String) -> Result<()> {
        let batch = batch.max(1);
        for start in range.clone().step_by(batch) {
            let end = (start + batch).min(range.end);
            let sends = self.clients[start..end].iter_mut().enumerate().map(|(i, c)| {
                let text = modify_query_set(c.query_set, 0, &key(start + i));
                c.query_set += 1;
                c.sink.send(Message::text(text))
            });
            for (i, sent) in futures::future::join_all(sends).await.into_iter().enumerate() {
                sent.with_context(|| format!("client {} could not send its subscription", start + i))?;
            }
        }
        Ok(())
    }

    /// Closes every client.
    pub fn close_all(&mut self) {
        self.clients.clear();
    }
}

/// One client: TCP connect, WebSocket handshake, `Connect`, and maybe the subscription.
async fn connect(addr: SocketAddr, url: String, session: String, key: Option<String>) -> Result<(SplitSink<Ws, Message>, SplitStream<Ws>, u32)> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await?;
    let (mut sink, stream) = ws.split();
    let hello = json!({ "type": "Connect", "sessionId": session, "connectionCount": 0, "lastCloseReason": null, "clientTs": 0 });
    sink.send(Message::text(hello.to_string())).await?;
    let mut query_set = 0;
    if let Some(key) = key {
        sink.send(Message::text(modify_query_set(0, 0, &key))).await?;
        query_set = 1;
    }
    Ok((sink, stream, query_set))
}
