//! `IsolatePool`: threads that each keep a warm isolate for the live deployment.
//! Isolates are not `Send`, so work travels to them as closures; an isolate is
//! rebuilt when the deployment changes or after it timed out or ran out of memory.

use crate::deployment::Deployment;
use crate::runtime::{Isolate, JsFailure};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

type Job = (Arc<Deployment>, Box<dyn FnOnce(&mut Isolate) + Send>);

pub struct IsolatePool {
    jobs: mpsc::Sender<Job>,
}

impl IsolatePool {
    pub fn start(name: &str, threads: usize) -> IsolatePool {
        let (jobs, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .stack_size(16 << 20)
                .spawn(move || worker(rx))
                .expect("spawn isolate thread");
        }
        IsolatePool { jobs }
    }

    /// Runs `f` on a warm isolate of `deployment`.
    pub async fn run<T: Send + 'static>(
        &self,
        deployment: Arc<Deployment>,
        f: impl FnOnce(&mut Isolate) -> T + Send + 'static,
    ) -> Result<T, JsFailure> {
        let (tx, rx) = oneshot::channel();
        let job = Box::new(move |isolate: &mut Isolate| {
            let _ = tx.send(f(isolate));
        });
        self.jobs.send((deployment, job)).map_err(|_| JsFailure::new("the function runtime has stopped"))?;
        rx.await.map_err(|_| JsFailure::new("the function runtime could not start an isolate for this deployment"))
    }
}

fn worker(rx: Arc<Mutex<mpsc::Receiver<Job>>>) {
    let mut current: Option<(u64, Isolate)> = None;
    loop {
        let next = rx.lock().expect("pool queue poisoned").recv();
        let Ok((deployment, job)) = next else { return };
        let reusable = matches!(&current, Some((v, iso)) if *v == deployment.version && iso.is_healthy());
        if !reusable {
            current = None;
            match Isolate::new(deployment.sources.clone(), &deployment.env) {
                Ok(iso) => current = Some((deployment.version, iso)),
                Err(e) => {
                    tracing::error!(error = %e, "could not create an isolate");
                    continue;
                }
            }
        }
        if let Some((_, iso)) = current.as_mut() {
            job(iso);
        }
    }
}
