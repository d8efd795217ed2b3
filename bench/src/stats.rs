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
    /// CPU time used during the phase by the server and by this process;
    /// `None` where not measured.
    pub server_cpu: Option<Duration>,
    pub client_cpu: Option<Duration>,
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

    /// Average number of cores busy with `cpu` during the phase (1.0 = one core).
    pub fn cores(&self, cpu: Option<Duration>) -> Option<f64> {
        Some(cpu?.as_secs_f64() / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// Adds another round of the same phase to this one.
    pub fn absorb(&mut self, other: Measurement) {
        let add = |a: Option<Duration>, b: Option<Duration>| Some(a? + b?);
        self.inserts += other.inserts;
        self.errors += other.errors;
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
        self.latencies.sort_unstable();
        self.server_cpu = add(self.server_cpu, other.server_cpu);
        self.client_cpu = add(self.client_cpu, other.client_cpu);
    }

    /// The `p`-th percentile latency (nearest rank), `p` in 0..=100.
    pub fn percentile(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

/// The `p`-th percentile (nearest rank) of sorted durations, `p` in 0..=100; zero if there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
