//! One benchmark result: how many inserts completed in how long, with the
//! latency of each timed unit (an HTTP request, or a SQLite transaction).

use std::time::Duration;

/// Figures of one benchmark phase.
pub struct Measurement {
    /// What was measured, e.g. "HTTP mutation" or "raw SQLite".
    pub path: String,
    /// The load shape, e.g. "16 concurrent" or "64 rows/commit".
    pub shape: String,
    /// Documents (rows) inserted successfully.
    pub inserts: usize,
    /// Requests that failed.
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted latencies of the timed units.
    latencies: Vec<Duration>,
    /// CPU used during the phase, in cores (1.0 = one core fully busy), by the
    /// server and by this process; `None` where not measured.
    pub server_cpu: Option<f64>,
    pub client_cpu: Option<f64>,
}

impl Measurement {
    pub fn new(path: &str, shape: String, inserts: usize, elapsed: Duration, mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Measurement {
            path: path.to_owned(),
            shape,
            inserts,
            errors: 0,
            elapsed,
            latencies,
            server_cpu: None,
            client_cpu: None,
        }
    }

    /// Inserts per second of wall-clock time.
    pub fn rate(&self) -> f64 {
        self.inserts as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The `p`-th percentile latency (nearest rank), `p` in 0..=100.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        self.latencies[rank.clamp(1, self.latencies.len()) - 1]
    }
}
