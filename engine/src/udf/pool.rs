//! `IsolatePool`: threads that each keep a warm isolate for the live deployment.
//! Isolates are not `Send`, so work travels to them as closures; an isolate is
//! rebuilt when the deployment changes or after it timed out or ran out of memory.
//!
//! Queries and mutations queue for a fixed set of threads: they never wait on
//! each other. Actions do (`ctx.runAction`), so an action pool never makes a
//! call wait for a busy thread: a call takes an idle thread or starts one, up
//! to a cap past which it is refused; threads beyond the warm ones exit when idle.

use crate::deployment::Deployment;
use crate::runtime::{Isolate, JsFailure};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = (Arc<Deployment>, Box<dyn FnOnce(&mut Isolate) + Send>);

/// What a call does when every thread is busy.
#[derive(Debug, Clone, Copy)]
pub enum WhenBusy {
    /// Wait in line (queries and mutations).
    Queue,
    /// Start another thread, up to `max` in all (actions).
    Grow { max: usize },
}

pub struct IsolatePool {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    rx: Mutex<mpsc::Receiver<Job>>,
    when_busy: WhenBusy,
    warm: usize,
    /// Threads waiting for a job and not yet promised to a caller.
    idle: AtomicUsize,
    live: AtomicUsize,
    spawned: AtomicUsize,
}

impl IsolatePool {
    /// A pool of `warm` threads, started now.
    pub fn start(name: &str, warm: usize, when_busy: WhenBusy) -> IsolatePool {
        let (jobs, rx) = mpsc::channel::<Job>();
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            rx: Mutex::new(rx),
            when_busy,
            warm,
            idle: AtomicUsize::new(0),
            live: AtomicUsize::new(0),
            spawned: AtomicUsize::new(0),
        });
        for _ in 0..warm {
            spawn(&shared);
        }
        IsolatePool { jobs, shared }
    }

    /// Runs `f` on a warm isolate of `deployment`.
    pub async fn run<T: Send + 'static>(
        &self,
        deployment: Arc<Deployment>,
        f: impl FnOnce(&mut Isolate) -> T + Send + 'static,
    ) -> Result<T, JsFailure> {
        self.reserve_thread()?;
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |isolate: &mut Isolate| {
            let _ = tx.send(f(isolate));
        });
        self.jobs.send((deployment, job)).map_err(|_| JsFailure::new("the function runtime has stopped"))?;
        rx.await.map_err(|_| JsFailure::new("the function runtime could not start an isolate for this deployment"))
    }

    /// For a growing pool: promises the coming job an idle thread, or starts one.
    fn reserve_thread(&self) -> Result<(), JsFailure> {
        let WhenBusy::Grow { max } = self.shared.when_busy else { return Ok(()) };
        let took_idle = self.shared.idle.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok();
        if took_idle {
            return Ok(());
        }
        if self.shared.live.load(Ordering::Acquire) >= max {
            return Err(JsFailure::new(format!(
                "Too many concurrent actions: {max} are running; try again when some have finished."
            )));
        }
        spawn(&self.shared);
        // The new thread is this job's: it does not count itself idle before its first job.
        Ok(())
    }
}

fn spawn(shared: &Arc<Shared>) {
    let n = shared.spawned.fetch_add(1, Ordering::Relaxed);
    shared.live.fetch_add(1, Ordering::AcqRel);
    let first_is_reserved = n >= shared.warm;
    let worker_shared = shared.clone();
    std::thread::Builder::new()
        .name(format!("{}-{n}", shared.name))
        .stack_size(16 << 20)
        .spawn(move || worker(worker_shared, first_is_reserved))
        .expect("spawn isolate thread");
}

fn worker(shared: Arc<Shared>, mut reserved: bool) {
    let mut current: Option<(u64, Isolate)> = None;
    loop {
        if !reserved {
            shared.idle.fetch_add(1, Ordering::AcqRel);
        }
        reserved = false;
        let next = shared.rx.lock().expect("pool queue poisoned").recv();
        let Ok((deployment, job)) = next else { break };
        run_job(&mut current, &deployment, job);
        if retire(&shared) {
            break;
        }
    }
    shared.live.fetch_sub(1, Ordering::AcqRel);
}

/// After a job in a growing pool: whether this thread is one more than the
/// warm ones needed, and leaves.
fn retire(shared: &Shared) -> bool {
    matches!(shared.when_busy, WhenBusy::Grow { .. }) && shared.idle.load(Ordering::Acquire) >= shared.warm
}

fn run_job(current: &mut Option<(u64, Isolate)>, deployment: &Deployment, job: Box<dyn FnOnce(&mut Isolate) + Send>) {
    let reusable = matches!(current, Some((v, iso)) if *v == deployment.version && iso.is_healthy());
    if !reusable {
        *current = None;
        match Isolate::new(deployment.sources.clone(), &deployment.env) {
            Ok(iso) => *current = Some((deployment.version, iso)),
            Err(e) => {
                tracing::error!(error = %e, "could not create an isolate");
                return;
            }
        }
    }
    if let Some((_, iso)) = current.as_mut() {
        job(iso);
    }
}
