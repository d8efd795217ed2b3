//! `RequestLog`: mutations by (client session, request id), so that one re-sent
//! after a reconnect is answered with the first outcome instead of running again.

use crate::udf::CallResult;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// How long an outcome is kept for a client that may reconnect and re-send.
const RETENTION: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub session: String,
    pub request_id: u32,
}

#[derive(Debug, Clone)]
struct Outcome {
    value: Result<serde_json::Value, crate::udf::CallError>,
    log_lines: Vec<String>,
    ts: Option<u64>,
}

type Entry = (Instant, Arc<OnceCell<Outcome>>);

#[derive(Clone, Default)]
pub struct RequestLog {
    entries: Arc<Mutex<HashMap<RequestKey, Entry>>>,
}

impl RequestLog {
    /// Runs `call` unless this request ran (or is running) already. A system
    /// error is not kept: the client re-sends the mutation to have it run again.
    pub async fn run_once(&self, key: RequestKey, call: impl Future<Output = CallResult>) -> CallResult {
        let cell = {
            let mut entries = self.entries.lock().expect("request log poisoned");
            let now = Instant::now();
            entries.retain(|_, (at, _)| now.duration_since(*at) < RETENTION);
            entries.entry(key).or_insert_with(|| (now, Arc::new(OnceCell::new()))).1.clone()
        };
        let outcome = cell
            .get_or_try_init(|| async {
                let r = call.await;
                match &r.value {
                    Err(e) if e.system.is_some() => Err(r),
                    _ => Ok(Outcome { value: r.value, log_lines: r.log_lines, ts: r.ts }),
                }
            })
            .await;
        match outcome {
            Ok(o) => CallResult { value: o.value.clone(), log_lines: o.log_lines.clone(), ts: o.ts },
            Err(failed) => failed,
        }
    }
}
