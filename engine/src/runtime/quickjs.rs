//! QuickJS isolates through `rquickjs`: the only file in Convect that touches the
//! JavaScript engine. An `Isolate` owns one runtime and context for one deployment,
//! loads its modules once and keeps them warm across executions. Async syscalls
//! become promises that the event loop here settles as the host completes them.

use super::*;
use rquickjs::loader::{Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::promise::PromiseState;
use rquickjs::{AsyncContext, AsyncRuntime, Ctx, Error, Exception, Function, Module, Object, Persistent, Promise, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Instant;

/// The entry points shared with the Node.js runtime, then the prelude, in one
/// block so that the shared declarations stay out of the global scope.
const PRELUDE: &str = concat!(
    "{\n",
    include_str!("shared.js"),
    "\n",
    include_str!("web_streams.js"),
    "\n",
    include_str!("stream_bodies.js"),
    "\n",
    include_str!("prelude.js"),
    "\n}"
);

/// Polls a future on this thread until it is ready. The isolate is
/// single-threaded, so the runtime's lock is never contended, and the futures
/// that LLRT's modules spawn (e.g. `crypto.subtle.digest`) finish on their first poll.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// Synchronous entry into an `AsyncContext`.
trait EnterSync {
    fn enter<F, R>(&self, f: F) -> R
    where
        F: for<'js> FnOnce(Ctx<'js>) -> R;
}

impl EnterSync for AsyncContext {
    fn enter<F, R>(&self, f: F) -> R
    where
        F: for<'js> FnOnce(Ctx<'js>) -> R,
    {
        block_on(self.with(f))
    }
}

type Resolvers = (Persistent<Function<'static>>, Persistent<Function<'static>>);

/// State shared between the isolate and the host functions it installs in JS.
struct Shared {
    host: RefCell<Option<Rc<RefCell<dyn Host>>>>,
    logs: RefCell<Vec<String>>,
    pending: RefCell<HashMap<u64, Resolvers>>,
    next_id: Cell<u64>,
    tx: mpsc::Sender<(u64, SyscallResult)>,
    deadline: Cell<Option<Instant>>,
    /// Whether syscall time is excluded from the budget (queries and mutations).
    pause_clock: Cell<bool>,
    interrupted: Cell<bool>,
}

impl Shared {
    fn with_host<T>(&self, f: impl FnOnce(&mut dyn Host) -> T) -> Option<T> {
        let started = Instant::now();
        let host = self.host.borrow().clone();
        let out = host.map(|h| f(&mut *h.borrow_mut()));
        if self.pause_clock.get() {
            if let Some(d) = self.deadline.get() {
                self.deadline.set(Some(d + started.elapsed()));
            }
        }
        out
    }
}

struct ModuleLoader {
    sources: ModuleSources,
}

impl Resolver for ModuleLoader {
    fn resolve<'js>(&mut self, _ctx: &Ctx<'js>, base: &str, name: &str) -> rquickjs::Result<String> {
        let path = resolve_specifier(base, name);
        if self.sources.contains_key(&path) {
            return Ok(path);
        }
        Err(Error::new_resolving_message(base, name, "module is not part of this deployment"))
    }
}

impl Loader for ModuleLoader {
    fn load<'js>(&mut self, ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Module<'js, Declared>> {
        let source = self.sources.get(name).ok_or_else(|| Error::new_loading(name))?;
        Module::declare(ctx.clone(), name, source.as_str())
    }
}

/// Fields drop in declaration order: every handle into the JS heap must go
/// before the context and runtime, or QuickJS aborts on leaked objects.
pub struct Isolate {
    namespaces: HashMap<String, Persistent<Object<'static>>>,
    shared: Rc<Shared>,
    completions: mpsc::Receiver<(u64, SyscallResult)>,
    healthy: bool,
    context: AsyncContext,
    runtime: AsyncRuntime,
}

impl Drop for Isolate {
    fn drop(&mut self) {
        self.namespaces.clear();
        self.shared.pending.borrow_mut().clear();
        // The interrupt handler holds `shared`; release it before the runtime goes.
        block_on(self.runtime.set_interrupt_handler(None));
    }
}

fn failure_from<'js>(ctx: &Ctx<'js>, err: Error) -> JsFailure {
    if !matches!(err, Error::Exception) {
        return JsFailure::new(err.to_string());
    }
    let thrown = ctx.catch();
    if let Some(e) = thrown.as_exception() {
        let msg = e.message().unwrap_or_default();
        let stack = e.stack().unwrap_or_default().trim_end().to_owned();
        return JsFailure { stack, ..JsFailure::new(format!("Uncaught Error: {msg}")) };
    }
    JsFailure::new(format!("Uncaught {:?}", thrown))
}

impl Isolate {
    /// An isolate for one deployment: `env` is its `process.env`, already set while
    /// modules load, so module-level code can read it.
    pub fn new(sources: ModuleSources, env: &BTreeMap<String, String>) -> Result<Isolate, JsFailure> {
        // An AsyncRuntime because LLRT's async functions (crypto.subtle) spawn futures,
        // which a plain Runtime cannot hold; `drive` polls them.
        let runtime = AsyncRuntime::new().map_err(|e| JsFailure::new(e.to_string()))?;
        block_on(runtime.set_memory_limit(HEAP_LIMIT_BYTES));
        block_on(runtime.set_max_stack_size(4 << 20));
        block_on(runtime.set_loader(ModuleLoader { sources: sources.clone() }, ModuleLoader { sources }));
        let context = block_on(AsyncContext::full(&runtime)).map_err(|e| JsFailure::new(e.to_string()))?;
        let (tx, completions) = mpsc::channel();
        let shared = Rc::new(Shared {
            host: RefCell::new(None),
            logs: RefCell::new(Vec::new()),
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            tx,
            deadline: Cell::new(None),
            pause_clock: Cell::new(true),
            interrupted: Cell::new(false),
        });
        let watch = shared.clone();
        block_on(runtime.set_interrupt_handler(Some(Box::new(move || {
            let over = watch.deadline.get().is_some_and(|d| Instant::now() > d);
            if over {
                watch.interrupted.set(true);
            }
            over
        }))));
        context
            .enter(|ctx| install_globals(&ctx, &shared).map_err(|e| failure_from(&ctx, e)))
            .map_err(|e| JsFailure::new(format!("prelude: {e}")))?;
        context.enter(|ctx| set_process_env(&ctx, env)).map_err(|e| JsFailure::new(format!("process.env: {e}")))?;
        Ok(Isolate { namespaces: HashMap::new(), shared, completions, healthy: true, context, runtime })
    }

    /// False after a timeout or out-of-memory; such an isolate should be replaced.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    pub fn analyze(&mut self, module: &str) -> Result<ModuleAnalysis, JsFailure> {
        let Isolate { context, namespaces, .. } = self;
        let text = context.enter(|ctx| -> Result<String, JsFailure> {
            let ns = namespace(&ctx, namespaces, module)?;
            let analyze: Function = global_fn(&ctx, "analyze").map_err(|e| failure_from(&ctx, e))?;
            analyze.call((ns,)).map_err(|e| failure_from(&ctx, e))
        })?;
        serde_json::from_str(&text).map_err(|e| JsFailure::new(format!("module analysis: {e}")))
    }

    /// Runs one execution to completion against `host`, and hands the host back.
    pub fn run<H: Host + 'static>(&mut self, exec: &Execution, host: H) -> (ExecOutcome, H) {
        self.run_entry(exec, host, "invoke")
    }

    /// Runs one HTTP action: `exec.module` is the router's module and
    /// `exec.args_json` the request (prelude.js's `invokeHttp`); the outcome's
    /// value is the response. Only this runtime serves them: `http.ts` cannot
    /// be a `"use node"` file.
    pub fn run_http<H: Host + 'static>(&mut self, exec: &Execution, host: H) -> (ExecOutcome, H) {
        self.run_entry(exec, host, "invokeHttp")
    }

    fn run_entry<H: Host + 'static>(&mut self, exec: &Execution, host: H, entry: &str) -> (ExecOutcome, H) {
        let host = Rc::new(RefCell::new(host));
        *self.shared.host.borrow_mut() = Some(host.clone());
        self.shared.pause_clock.set(exec.kind != UdfKind::Action);
        self.shared.interrupted.set(false);
        self.shared.deadline.set(Some(Instant::now() + exec.time_limit));
        let mut result = self.start(exec, entry).and_then(|p| self.drive(p, exec));
        if self.shared.interrupted.get() {
            result = Err(exec.isolate_timeout());
        }
        self.shared.deadline.set(None);
        self.shared.pending.borrow_mut().clear();
        while self.completions.try_recv().is_ok() {}
        if self.shared.interrupted.get() {
            // An interrupt can leave module state half-updated; start afresh.
            self.healthy = false;
        }
        if let Err(f) = &result {
            if f.message.contains("out of memory") {
                self.healthy = false;
            }
        }
        self.shared.host.borrow_mut().take();
        let host = Rc::try_unwrap(host).ok().expect("host released after the execution").into_inner();
        let log_lines = std::mem::take(&mut *self.shared.logs.borrow_mut());
        (ExecOutcome { result, log_lines }, host)
    }

    fn start(&mut self, exec: &Execution, entry: &str) -> Result<Persistent<Promise<'static>>, JsFailure> {
        let Isolate { context, namespaces, .. } = self;
        let meta = exec.meta_json();
        context.enter(|ctx| {
            let ns = namespace(&ctx, namespaces, &exec.module)?;
            let invoke: Function = global_fn(&ctx, entry).map_err(|e| failure_from(&ctx, e))?;
            let promise: Promise = invoke
                .call((ns, exec.export.as_str(), exec.kind.as_str(), exec.args_json.as_str(), meta))
                .map_err(|e| failure_from(&ctx, e))?;
            Ok(Persistent::save(&ctx, promise))
        })
    }

    fn drive(&mut self, promise: Persistent<Promise<'static>>, exec: &Execution) -> Result<String, JsFailure> {
        loop {
            // Promise jobs, then the futures LLRT's modules spawned, until neither makes
            // progress. Jobs run through `Ctx`: rquickjs 0.11's runtime-level
            // `execute_pending_job` frees the context once too often when a job throws
            // (fixed in 0.14), so it is only called with an empty job queue, to poll futures.
            loop {
                self.context.enter(|ctx| while ctx.execute_pending_job() {});
                if self.shared.interrupted.get() {
                    break;
                }
                match block_on(self.runtime.execute_pending_job()) {
                    Ok(false) => break,
                    Ok(true) => {}
                    // Not expected with an empty job queue; forgetting avoids the double free.
                    Err(e) => std::mem::forget(e),
                }
            }
            let settled = self.context.enter(|ctx| -> Result<Option<String>, JsFailure> {
                while ctx.execute_pending_job() {}
                let p = promise.clone().restore(&ctx).map_err(|e| failure_from(&ctx, e))?;
                match p.state() {
                    PromiseState::Pending => Ok(None),
                    PromiseState::Resolved => p.result::<String>().expect("settled").map(Some).map_err(|e| failure_from(&ctx, e)),
                    PromiseState::Rejected => Err(p.result::<Value>().expect("settled").map_err(|e| failure_from(&ctx, e)).err().unwrap_or_else(|| JsFailure::new("promise rejected"))),
                }
            });
            if self.shared.interrupted.get() {
                return Err(exec.isolate_timeout());
            }
            if let Some(text) = settled? {
                return parse_outcome(&text);
            }
            if self.shared.pending.borrow().is_empty() {
                return Err(JsFailure::new(
                    "Uncaught Error: the function awaited a promise that can never settle (no pending syscall or timer).",
                ));
            }
            let wait = self.shared.deadline.get().map(|d| d.saturating_duration_since(Instant::now())).unwrap_or_default();
            let started = Instant::now();
            let (id, result) = match self.completions.recv_timeout(wait) {
                Ok(c) => c,
                Err(_) => return Err(exec.isolate_timeout()),
            };
            if self.shared.pause_clock.get() {
                if let Some(d) = self.shared.deadline.get() {
                    self.shared.deadline.set(Some(d + started.elapsed()));
                }
            }
            self.settle(id, result);
        }
    }

    fn settle(&self, id: u64, result: SyscallResult) {
        let Some((resolve, reject)) = self.shared.pending.borrow_mut().remove(&id) else { return };
        self.context.enter(|ctx| {
            let outcome = match result {
                Ok(json) => resolve.restore(&ctx).and_then(|f| f.call::<_, ()>((json.to_string(),))),
                Err(e) => make_error(&ctx, &e).and_then(|err| reject.restore(&ctx)?.call::<_, ()>((err,))),
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "settling a syscall promise failed");
            }
        });
    }
}

fn global_fn<'js>(ctx: &Ctx<'js>, name: &str) -> rquickjs::Result<Function<'js>> {
    ctx.globals().get::<_, Object>("__convect")?.get(name)
}

fn namespace<'js>(
    ctx: &Ctx<'js>,
    cache: &mut HashMap<String, Persistent<Object<'static>>>,
    module: &str,
) -> Result<Object<'js>, JsFailure> {
    if let Some(ns) = cache.get(module) {
        return ns.clone().restore(ctx).map_err(|e| failure_from(ctx, e));
    }
    let ns: Object = Module::import(ctx, module)
        .and_then(|p| p.finish::<Object>())
        .map_err(|e| failure_from(ctx, e))?;
    cache.insert(module.to_owned(), Persistent::save(ctx, ns.clone()));
    Ok(ns)
}

fn make_error<'js>(ctx: &Ctx<'js>, e: &SyscallError) -> rquickjs::Result<Value<'js>> {
    let err = Exception::from_message(ctx.clone(), &e.message)?;
    if let Some(data) = &e.data {
        err.as_object().set("data", ctx.json_parse(data.to_string())?)?;
    }
    Ok(err.into_value())
}

/// Web APIs from AWS LLRT's maintained modules for rquickjs.
fn install_web_apis(ctx: &Ctx<'_>) -> rquickjs::Result<()> {
    llrt_buffer::init(ctx)?; // Buffer, atob, btoa
    llrt_util::init(ctx)?; // TextEncoder, TextDecoder
    llrt_url::init(ctx)?; // URL, URLSearchParams
    llrt_crypto::init(ctx)?; // crypto.getRandomValues, randomUUID, subtle
    // Headers, Request, Response and FormData, but not llrt_fetch::init: its fetch has
    // its own HTTP client and tokio; ours goes through the host (prelude.js).
    let globals = ctx.globals();
    rquickjs::Class::<llrt_fetch::headers::Headers>::define(&globals)?;
    rquickjs::Class::<llrt_fetch::request::Request>::define(&globals)?;
    rquickjs::Class::<llrt_fetch::response::Response>::define(&globals)?;
    rquickjs::Class::<llrt_fetch::form_data::FormData>::define(&globals)?;
    fn clone<'js>(ctx: Ctx<'js>, value: Value<'js>, options: rquickjs::prelude::Opt<Object<'js>>) -> rquickjs::Result<Value<'js>> {
        llrt_utils::clone::structured_clone(&ctx, value, options)
    }
    ctx.globals().set("structuredClone", Function::new(ctx.clone(), clone)?)?;
    Ok(())
}

fn set_process_env(ctx: &Ctx<'_>, env: &BTreeMap<String, String>) -> rquickjs::Result<()> {
    let vars = Object::new(ctx.clone())?;
    for (name, value) in env {
        vars.set(name.as_str(), value.as_str())?;
    }
    ctx.globals().get::<_, Object>("process")?.set("env", vars)
}

fn install_globals<'js>(ctx: &Ctx<'js>, shared: &Rc<Shared>) -> rquickjs::Result<()> {
    install_web_apis(ctx)?;
    let convex = Object::new(ctx.clone())?;
    let s = shared.clone();
    convex.set(
        "syscall",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, op: String, args: String| -> rquickjs::Result<String> {
            let args: Json = serde_json::from_str(&args).map_err(|e| Exception::throw_message(&ctx, &e.to_string()))?;
            match s.with_host(|h| h.syscall(&op, args)) {
                Some(Ok(json)) => Ok(json.to_string()),
                Some(Err(e)) => Err(ctx.throw(make_error(&ctx, &e)?)),
                None => Err(Exception::throw_message(&ctx, "no execution is running")),
            }
        })?,
    )?;
    let s = shared.clone();
    let async_syscall = Function::new(ctx.clone(), move |ctx: Ctx<'js>, op: String, args: String| -> rquickjs::Result<Promise<'js>> {
        let args: Json = serde_json::from_str(&args).map_err(|e| Exception::throw_message(&ctx, &e.to_string()))?;
        let (promise, resolve, reject) = ctx.promise()?;
        let id = s.next_id.get();
        s.next_id.set(id + 1);
        s.pending.borrow_mut().insert(id, (Persistent::save(&ctx, resolve), Persistent::save(&ctx, reject)));
        let tx = s.tx.clone();
        let done = Completion::new(move |result| {
            let _ = tx.send((id, result));
        });
        if s.with_host(|h| h.async_syscall(&op, args, done)).is_none() {
            return Err(Exception::throw_message(&ctx, "no execution is running"));
        }
        Ok(promise)
    })?;
    convex.set("asyncSyscall", async_syscall.clone())?;
    ctx.globals().set("Convex", convex)?;
    let host = Object::new(ctx.clone())?;
    let s = shared.clone();
    host.set("log", Function::new(ctx.clone(), move |line: String| s.logs.borrow_mut().push(line))?)?;
    host.set("asyncOp", async_syscall)?;
    ctx.globals().set("__convect_host", host)?;
    ctx.eval::<(), _>(PRELUDE)
}
