// WHATWG Streams (https://streams.spec.whatwg.org/) for the QuickJS runtime.
// QuickJS ships no ReadableStream, WritableStream or TransformStream, yet HTTP
// actions need them: request and response bodies may be streamed (server-sent
// events, chunked downloads), and Convex code builds such bodies with
// `new TransformStream()` or `new ReadableStream({ pull })`. The classes follow
// the standard's abstract operations closely, because real code depends on the
// subtle parts: back-pressure (a producer awaiting `writer.write` must not run
// ahead of the consumer), error propagation across pipes, and cancellation.
// State lives in records reachable only through a WeakMap held by this closure,
// so user code cannot reach or corrupt it. Byte streams are accepted but act as
// default streams of Uint8Array chunks (no BYOB readers).
const convectWebStreams = () => {
  "use strict";
  const micro = typeof queueMicrotask === "function" ? (f) => queueMicrotask(f) : (f) => { Promise.resolve().then(f); };
  const noop = () => {};
  // Web IDL's "a promise resolved with": always a new promise, even for a
  // promise argument (which costs two extra microtasks, as in browsers).
  const resolved = (v) => new Promise((resolve) => resolve(v));
  const resolvedFn = () => resolved();
  const rejected = (e) => Promise.reject(e);
  // Promises the caller may never observe (a `closed` nobody reads) must not be
  // reported as unhandled rejections.
  const handled = (p) => { p.then(undefined, noop); return p; };
  const upon = (p, onFulfilled = noop, onRejected = noop) => { p.then(onFulfilled, onRejected); };
  const deferred = () => {
    const d = { state: "pending" };
    d.promise = new Promise((res, rej) => {
      d.resolve = (v) => { if (d.state === "pending") { d.state = "fulfilled"; res(v); } };
      d.reject = (e) => { if (d.state === "pending") { d.state = "rejected"; rej(e); } };
    });
    return d;
  };
  const settled = (ok, v) => {
    const d = deferred();
    if (ok) d.resolve(v); else { d.reject(v); handled(d.promise); }
    return d;
  };
  const promiseCall = (fn, thisArg, ...args) => {
    try { return resolved(fn.apply(thisArg, args)); } catch (e) { return rejected(e); }
  };

  const slots = new WeakMap();
  const slot = (o, kind) => {
    const s = o !== null && (typeof o === "object" || typeof o === "function") ? slots.get(o) : undefined;
    return s !== undefined && s.kind === kind ? s : undefined;
  };
  const check = (o, kind, name) => {
    const s = slot(o, kind);
    if (s === undefined) throw new TypeError(`Illegal invocation: receiver is not a ${name}`);
    return s;
  };
  const dictionary = (v, what) => {
    if (v === undefined || v === null) return {};
    if (typeof v !== "object" && typeof v !== "function") throw new TypeError(`${what} must be an object`);
    return v;
  };
  const method = (dict, key, what) => {
    const f = dict[key];
    if (f !== undefined && typeof f !== "function") throw new TypeError(`${what}.${key} must be a function`);
    return f;
  };
  const strategyOf = (strategy, defaultHWM) => {
    const dict = dictionary(strategy, "strategy");
    const size = method(dict, "size", "strategy");
    let hwm = defaultHWM;
    if (dict.highWaterMark !== undefined) {
      hwm = Number(dict.highWaterMark);
      if (Number.isNaN(hwm) || hwm < 0) throw new RangeError("highWaterMark must be a non-negative number");
    }
    return { hwm, hasSize: size !== undefined, size: size === undefined ? () => 1 : (chunk) => Number(size(chunk)) };
  };

  // ---- queue-with-sizes, shared by readable and writable controllers ----
  const resetQueue = (c) => { c.queue = []; c.queueTotalSize = 0; };
  const enqueueWithSize = (c, value, size) => {
    if (typeof size !== "number" || !(size >= 0) || size === Infinity) {
      throw new RangeError("Chunk size must be a finite, non-negative number");
    }
    c.queue.push({ value, size });
    c.queueTotalSize += size;
  };
  const dequeue = (c) => {
    const entry = c.queue.shift();
    c.queueTotalSize = Math.max(0, c.queueTotalSize - entry.size); // rounding can drift below zero
    return entry.value;
  };

  // ---- ReadableStream abstract operations ----
  const initRS = (pub) => {
    const s = {
      kind: "RS", pub, state: "readable", reader: undefined, storedError: undefined, disturbed: false, controller: undefined,
    };
    slots.set(pub, s);
    return s;
  };
  const setUpRSController = (stream, start, pull, cancel, hwm, size, bytes) => {
    const pub = Object.create((bytes ? ReadableByteStreamController : ReadableStreamDefaultController).prototype);
    const c = {
      kind: "RSC", pub, stream, queue: [], queueTotalSize: 0, started: false, closeRequested: false,
      pullAgain: false, pulling: false, hwm, size, pull, cancel, bytes,
    };
    slots.set(pub, c);
    stream.controller = c;
    upon(resolved(start(pub)), () => { c.started = true; rsCallPullIfNeeded(c); }, (r) => rsControllerError(c, r));
    return c;
  };
  const createRS = (start, pull, cancel, hwm = 1, size = () => 1) => {
    const s = initRS(Object.create(ReadableStream.prototype));
    setUpRSController(s, start, pull, cancel, hwm, size, false);
    return s;
  };
  const rsCanCloseOrEnqueue = (c) => !c.closeRequested && c.stream.state === "readable";
  const rsDesiredSize = (c) => {
    const state = c.stream.state;
    return state === "errored" ? null : state === "closed" ? 0 : c.hwm - c.queueTotalSize;
  };
  const rsShouldCallPull = (c) => {
    if (!rsCanCloseOrEnqueue(c) || !c.started) return false;
    const reader = c.stream.reader;
    if (reader !== undefined && reader.readRequests.length > 0) return true;
    return rsDesiredSize(c) > 0;
  };
  const rsCallPullIfNeeded = (c) => {
    if (!rsShouldCallPull(c)) return;
    if (c.pulling) { c.pullAgain = true; return; }
    c.pulling = true;
    upon(c.pull(c.pub), () => {
      c.pulling = false;
      if (c.pullAgain) { c.pullAgain = false; rsCallPullIfNeeded(c); }
    }, (e) => rsControllerError(c, e));
  };
  const rsClearAlgorithms = (c) => { c.pull = resolvedFn; c.cancel = resolvedFn; c.size = undefined; };
  const rsEnqueue = (c, chunk) => {
    if (!rsCanCloseOrEnqueue(c)) return;
    const stream = c.stream;
    if (stream.reader !== undefined && stream.reader.readRequests.length > 0) {
      stream.reader.readRequests.shift().chunk(chunk);
    } else {
      try { enqueueWithSize(c, chunk, c.size(chunk)); } catch (e) { rsControllerError(c, e); throw e; }
    }
    rsCallPullIfNeeded(c);
  };
  const rsClose = (c) => {
    if (!rsCanCloseOrEnqueue(c)) return;
    c.closeRequested = true;
    if (c.queue.length === 0) { rsClearAlgorithms(c); readableStreamClose(c.stream); }
  };
  const rsControllerError = (c, e) => {
    if (c.stream.state !== "readable") return;
    resetQueue(c);
    rsClearAlgorithms(c);
    readableStreamError(c.stream, e);
  };
  const rsPullSteps = (c, readRequest) => {
    if (c.queue.length > 0) {
      const chunk = dequeue(c);
      if (c.closeRequested && c.queue.length === 0) { rsClearAlgorithms(c); readableStreamClose(c.stream); }
      else rsCallPullIfNeeded(c);
      readRequest.chunk(chunk);
    } else {
      c.stream.reader.readRequests.push(readRequest);
      rsCallPullIfNeeded(c);
    }
  };
  const readableStreamCancel = (s, reason) => {
    s.disturbed = true;
    if (s.state === "closed") return resolved();
    if (s.state === "errored") return rejected(s.storedError);
    readableStreamClose(s);
    const c = s.controller;
    resetQueue(c);
    const result = c.cancel(reason);
    rsClearAlgorithms(c);
    return result.then(noop);
  };
  const readableStreamClose = (s) => {
    s.state = "closed";
    const reader = s.reader;
    if (reader === undefined) return;
    reader.closed.resolve();
    const requests = reader.readRequests;
    reader.readRequests = [];
    for (const request of requests) request.close();
  };
  const readableStreamError = (s, e) => {
    s.state = "errored";
    s.storedError = e;
    const reader = s.reader;
    if (reader === undefined) return;
    reader.closed.reject(e);
    handled(reader.closed.promise);
    errorReadRequests(reader, e);
  };
  const errorReadRequests = (reader, e) => {
    const requests = reader.readRequests;
    reader.readRequests = [];
    for (const request of requests) request.error(e);
  };
  const setUpReader = (pub, s) => {
    if (s.reader !== undefined) throw new TypeError("ReadableStream is already locked to a reader");
    const closed = s.state === "readable" ? deferred() : settled(s.state === "closed", s.storedError);
    const reader = { kind: "RSR", pub, stream: s, readRequests: [], closed };
    s.reader = reader;
    slots.set(pub, reader);
    return reader;
  };
  const acquireReader = (s) => setUpReader(Object.create(ReadableStreamDefaultReader.prototype), s);
  const readerRead = (reader, request) => {
    const s = reader.stream;
    s.disturbed = true;
    if (s.state === "closed") request.close();
    else if (s.state === "errored") request.error(s.storedError);
    else rsPullSteps(s.controller, request);
  };
  const readerRelease = (reader) => {
    const s = reader.stream;
    const e = new TypeError("The reader was released");
    if (s.state === "readable") reader.closed.reject(e); else reader.closed = settled(false, e);
    handled(reader.closed.promise);
    s.reader = undefined;
    reader.stream = undefined;
    errorReadRequests(reader, new TypeError("The reader was released"));
  };
  const byteChunk = (chunk) => {
    if (!ArrayBuffer.isView(chunk)) throw new TypeError("A byte stream chunk must be an ArrayBufferView");
    if (chunk.byteLength === 0) throw new TypeError("A byte stream chunk must not be empty");
    // The standard transfers the buffer away from the producer; a copy keeps
    // the same guarantee (later writes to the source do not show through).
    return new Uint8Array(chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength));
  };

  const teeStream = (stream) => {
    const reader = acquireReader(stream);
    let reading = false, readAgain = false, canceled1 = false, canceled2 = false, reason1, reason2;
    const cancelPromise = deferred();
    const branches = [];
    const pull = () => {
      if (reading) { readAgain = true; return resolved(); }
      reading = true;
      readerRead(reader, {
        // A microtask, as the standard does, so a branch's enqueue cannot run
        // user code inside the read that fulfilled it.
        chunk: (chunk) => micro(() => {
          readAgain = false;
          if (!canceled1) rsEnqueue(branches[0].controller, chunk);
          if (!canceled2) rsEnqueue(branches[1].controller, chunk);
          reading = false;
          if (readAgain) pull();
        }),
        close: () => {
          reading = false;
          if (!canceled1) rsClose(branches[0].controller);
          if (!canceled2) rsClose(branches[1].controller);
          if (!canceled1 || !canceled2) cancelPromise.resolve();
        },
        error: () => { reading = false; },
      });
      return resolved();
    };
    const cancelBranch = (first) => (reason) => {
      if (first) { canceled1 = true; reason1 = reason; } else { canceled2 = true; reason2 = reason; }
      if (canceled1 && canceled2) cancelPromise.resolve(readableStreamCancel(stream, [reason1, reason2]));
      return cancelPromise.promise;
    };
    branches.push(createRS(noop, pull, cancelBranch(true)), createRS(noop, pull, cancelBranch(false)));
    upon(reader.closed.promise, noop, (r) => {
      rsControllerError(branches[0].controller, r);
      rsControllerError(branches[1].controller, r);
      if (!canceled1 || !canceled2) cancelPromise.resolve();
    });
    return branches;
  };

  const abortError = (signal) => {
    if (signal.reason !== undefined) return signal.reason;
    if (typeof DOMException === "function") return new DOMException("The operation was aborted", "AbortError");
    return Object.assign(new Error("The operation was aborted"), { name: "AbortError" });
  };
  const pipeOptions = (options) => {
    const o = dictionary(options, "options");
    const signal = o.signal;
    if (signal !== undefined && typeof AbortSignal === "function" && !(signal instanceof AbortSignal)) {
      throw new TypeError("options.signal must be an AbortSignal");
    }
    return {
      preventAbort: !!o.preventAbort, preventCancel: !!o.preventCancel, preventClose: !!o.preventClose,
      signal: signal !== undefined && signal !== null && typeof signal.addEventListener === "function" ? signal : undefined,
    };
  };
  const pipeStreams = (source, dest, { preventClose, preventAbort, preventCancel, signal }) => {
    const reader = acquireReader(source);
    const writer = acquireWriter(dest);
    source.disturbed = true;
    const done = deferred();
    let shuttingDown = false;
    let currentWrite = resolved();
    let onAbort;
    const finalize = (isError, error) => {
      writerRelease(writer);
      readerRelease(reader);
      if (onAbort !== undefined) signal.removeEventListener("abort", onAbort);
      if (isError) done.reject(error); else done.resolve();
    };
    const waitForWrites = () => {
      const w = currentWrite;
      return w.then(() => (w !== currentWrite ? waitForWrites() : undefined));
    };
    const shutdown = (action, isError, error) => {
      if (shuttingDown) return;
      shuttingDown = true;
      const run = () => {
        if (action === undefined) { finalize(isError, error); return; }
        let p;
        try { p = action(); } catch (e) { p = rejected(e); }
        upon(p, () => finalize(isError, error), (e) => finalize(true, e));
      };
      if (dest.state === "writable" && !wsCloseQueuedOrInFlight(dest)) upon(waitForWrites(), run);
      else run();
    };
    const sourceErrored = (e) => shutdown(preventAbort ? undefined : () => wsAbort(dest, e), true, e);
    const destErrored = (e) => shutdown(preventCancel ? undefined : () => readableStreamCancel(source, e), true, e);
    const sourceClosed = () => shutdown(preventClose ? undefined : () => writerCloseWithErrorPropagation(writer), false);
    const destClosed = () => {
      const e = new TypeError("The destination stream closed before all data could be piped to it");
      shutdown(preventCancel ? undefined : () => readableStreamCancel(source, e), true, e);
    };
    if (signal !== undefined) {
      onAbort = () => {
        const e = abortError(signal);
        shutdown(() => Promise.all([
          !preventAbort && dest.state === "writable" ? wsAbort(dest, e) : resolved(),
          !preventCancel && source.state === "readable" ? readableStreamCancel(source, e) : resolved(),
        ]), true, e);
      };
      if (signal.aborted) { onAbort(); return done.promise; }
      signal.addEventListener("abort", onAbort);
    }
    // Errors travel forward before backward, and both before closes.
    if (source.state === "errored") sourceErrored(source.storedError);
    else if (dest.state === "errored") destErrored(dest.storedError);
    else if (source.state === "closed") sourceClosed();
    else if (wsCloseQueuedOrInFlight(dest) || dest.state === "closed") destClosed();
    upon(reader.closed.promise, () => sourceClosed(), (e) => sourceErrored(e));
    upon(writer.closed.promise, noop, (e) => destErrored(e));
    const loop = () => {
      if (shuttingDown) return;
      upon(writer.ready.promise, () => {
        if (shuttingDown) return;
        readerRead(reader, {
          chunk: (chunk) => { currentWrite = writerWrite(writer, chunk).then(noop, noop); loop(); },
          close: noop,
          error: noop,
        });
      });
    };
    loop();
    return done.promise;
  };

  // The async iterator's prototype inherits %AsyncIteratorPrototype%, so the
  // iterator is itself async-iterable like any built-in one.
  const AsyncIteratorPrototype = Object.getPrototypeOf(Object.getPrototypeOf((async function* () {}).prototype));
  // As in Web IDL, a settled next() clears `ongoing`, so a return() after it
  // (a `break` out of for-await) cancels synchronously. That matters in
  // QuickJS, whose for-await does not wait for return()'s promise.
  const END = {};
  const iterNext = (it) => {
    if (it.finished) return resolved({ value: undefined, done: true });
    const read = new Promise((resolve, reject) => {
      readerRead(it.reader, {
        chunk: (value) => resolve({ value }),
        close: () => { readerRelease(it.reader); resolve(END); },
        error: (e) => { readerRelease(it.reader); reject(e); },
      });
    });
    return read.then((r) => {
      it.ongoing = undefined;
      if (r !== END) return { value: r.value, done: false };
      it.finished = true;
      return { value: undefined, done: true };
    }, (e) => {
      it.ongoing = undefined;
      it.finished = true;
      throw e;
    });
  };
  const iterReturn = (it, value) => {
    if (it.finished) return resolved({ value, done: true });
    it.finished = true;
    const reader = it.reader;
    const result = it.preventCancel ? resolved() : readableStreamCancel(reader.stream, value);
    readerRelease(reader);
    return result.then(() => ({ value, done: true }));
  };
  // Calls queue behind each other so overlapping next()/return() stay ordered.
  const iterStep = (receiver, steps) => {
    const it = slot(receiver, "RSI");
    if (it === undefined) return rejected(new TypeError("Illegal invocation"));
    it.ongoing = it.ongoing === undefined ? steps(it) : it.ongoing.then(() => steps(it), () => steps(it));
    return it.ongoing;
  };
  const iteratorProto = Object.create(AsyncIteratorPrototype);
  const iteratorMethods = {
    next() { return iterStep(this, iterNext); },
    return(value) { return iterStep(this, (it) => iterReturn(it, value)); },
  };
  Object.defineProperties(iteratorProto, Object.getOwnPropertyDescriptors(iteratorMethods));
  Object.defineProperty(iteratorProto, Symbol.toStringTag, { value: "ReadableStream AsyncIterator", configurable: true });

  class ReadableStream {
    constructor(underlyingSource = undefined, strategy = undefined) {
      const source = underlyingSource === undefined ? null : underlyingSource;
      const dict = dictionary(source, "underlyingSource");
      const start = method(dict, "start", "underlyingSource");
      const pull = method(dict, "pull", "underlyingSource");
      const cancel = method(dict, "cancel", "underlyingSource");
      const type = dict.type;
      const bytes = type !== undefined && `${type}` === "bytes";
      if (type !== undefined && !bytes) throw new TypeError(`Invalid ReadableStream type: ${type}`);
      const { hwm, size, hasSize } = strategyOf(strategy, bytes ? 0 : 1);
      if (bytes && hasSize) throw new RangeError("The strategy for a byte stream cannot have a size function");
      const s = initRS(this);
      setUpRSController(
        s,
        (c) => (start === undefined ? undefined : start.call(source, c)),
        pull === undefined ? resolvedFn : (c) => promiseCall(pull, source, c),
        cancel === undefined ? resolvedFn : (r) => promiseCall(cancel, source, r),
        hwm,
        bytes ? (chunk) => chunk.byteLength : size,
        bytes,
      );
    }
    get locked() { return check(this, "RS", "ReadableStream").reader !== undefined; }
    cancel(reason = undefined) {
      const s = slot(this, "RS");
      if (s === undefined) return rejected(new TypeError("Illegal invocation"));
      if (s.reader !== undefined) return rejected(new TypeError("Cannot cancel a locked ReadableStream"));
      return readableStreamCancel(s, reason);
    }
    getReader(options = undefined) {
      const s = check(this, "RS", "ReadableStream");
      const mode = dictionary(options, "options").mode;
      if (mode === undefined) return acquireReader(s).pub;
      if (`${mode}` === "byob") throw new TypeError("BYOB readers are not supported");
      throw new TypeError(`Invalid reader mode: ${mode}`);
    }
    pipeThrough(transform, options = undefined) {
      const s = check(this, "RS", "ReadableStream");
      const pair = dictionary(transform, "transform");
      const readable = pair.readable, writable = pair.writable;
      const r = slot(readable, "RS"), w = slot(writable, "WS");
      if (r === undefined || w === undefined) throw new TypeError("pipeThrough needs a { writable, readable } pair");
      const o = pipeOptions(options);
      if (s.reader !== undefined) throw new TypeError("Cannot pipe a locked ReadableStream");
      if (w.writer !== undefined) throw new TypeError("Cannot pipe to a locked WritableStream");
      handled(pipeStreams(s, w, o));
      return readable;
    }
    pipeTo(destination, options = undefined) {
      const s = slot(this, "RS");
      if (s === undefined) return rejected(new TypeError("Illegal invocation"));
      const w = slot(destination, "WS");
      if (w === undefined) return rejected(new TypeError("pipeTo needs a WritableStream"));
      let o;
      try { o = pipeOptions(options); } catch (e) { return rejected(e); }
      if (s.reader !== undefined) return rejected(new TypeError("Cannot pipe a locked ReadableStream"));
      if (w.writer !== undefined) return rejected(new TypeError("Cannot pipe to a locked WritableStream"));
      return pipeStreams(s, w, o);
    }
    tee() { return teeStream(check(this, "RS", "ReadableStream")).map((b) => b.pub); }
    values(options = undefined) {
      const s = check(this, "RS", "ReadableStream");
      const preventCancel = !!dictionary(options, "options").preventCancel;
      const it = Object.create(iteratorProto);
      slots.set(it, { kind: "RSI", reader: acquireReader(s), preventCancel, finished: false, ongoing: undefined });
      return it;
    }
    static from(asyncIterable) {
      if (asyncIterable === undefined || asyncIterable === null) throw new TypeError("ReadableStream.from needs an iterable");
      let iterator;
      const asyncMethod = asyncIterable[Symbol.asyncIterator];
      if (asyncMethod !== undefined && asyncMethod !== null) {
        iterator = asyncMethod.call(asyncIterable);
      } else {
        const syncMethod = asyncIterable[Symbol.iterator];
        if (typeof syncMethod !== "function") throw new TypeError("ReadableStream.from needs an iterable or async iterable");
        const sync = syncMethod.call(asyncIterable);
        if (Object(sync) !== sync) throw new TypeError("The iterator must be an object");
        const syncNext = sync.next;
        // Like CreateAsyncFromSyncIterator: promised values are awaited.
        const unwrap = async (r) => {
          if (Object(r) !== r) throw new TypeError("The iterator result must be an object");
          const done = !!r.done;
          return { done, value: await r.value };
        };
        iterator = {
          next: async () => unwrap(syncNext.call(sync)),
          return: async (value) => {
            const ret = sync.return;
            return ret === undefined || ret === null ? { value, done: true } : unwrap(ret.call(sync, value));
          },
        };
      }
      if (Object(iterator) !== iterator) throw new TypeError("The iterator must be an object");
      const next = iterator.next;
      const s = createRS(noop, async () => {
        const r = await next.call(iterator);
        if (Object(r) !== r) throw new TypeError("The iterator result must be an object");
        if (r.done) rsClose(s.controller); else rsEnqueue(s.controller, r.value);
      }, async (reason) => {
        const ret = iterator.return;
        if (ret === undefined || ret === null) return;
        const r = await ret.call(iterator, reason);
        if (Object(r) !== r) throw new TypeError("The iterator return() result must be an object");
      }, 0);
      return s.pub;
    }
  }
  Object.defineProperty(ReadableStream.prototype, Symbol.asyncIterator, {
    value: ReadableStream.prototype.values, writable: true, configurable: true,
  });

  class ReadableStreamDefaultController {
    constructor() { throw new TypeError("Illegal constructor"); }
    get desiredSize() { return rsDesiredSize(check(this, "RSC", "ReadableStreamDefaultController")); }
    close() {
      const c = check(this, "RSC", "ReadableStreamDefaultController");
      if (!rsCanCloseOrEnqueue(c)) throw new TypeError("The stream is not in a state that permits close");
      rsClose(c);
    }
    enqueue(chunk = undefined) {
      const c = check(this, "RSC", "ReadableStreamDefaultController");
      if (c.bytes) chunk = byteChunk(chunk);
      if (!rsCanCloseOrEnqueue(c)) throw new TypeError("Cannot enqueue a chunk into a stream that is closed or closing");
      rsEnqueue(c, chunk);
    }
    error(e = undefined) { rsControllerError(check(this, "RSC", "ReadableStreamDefaultController"), e); }
  }
  class ReadableByteStreamController extends ReadableStreamDefaultController {
    // Without BYOB readers there is never a pending view to fill.
    get byobRequest() { check(this, "RSC", "ReadableByteStreamController"); return null; }
  }

  class ReadableStreamDefaultReader {
    constructor(stream) {
      const s = slot(stream, "RS");
      if (s === undefined) throw new TypeError("ReadableStreamDefaultReader needs a ReadableStream");
      setUpReader(this, s);
    }
    get closed() {
      const r = slot(this, "RSR");
      return r === undefined ? rejected(new TypeError("Illegal invocation")) : r.closed.promise;
    }
    read() {
      const r = slot(this, "RSR");
      if (r === undefined) return rejected(new TypeError("Illegal invocation"));
      if (r.stream === undefined) return rejected(new TypeError("The reader was released"));
      return new Promise((resolve, reject) => readerRead(r, {
        chunk: (value) => resolve({ value, done: false }),
        close: () => resolve({ value: undefined, done: true }),
        error: reject,
      }));
    }
    releaseLock() {
      const r = check(this, "RSR", "ReadableStreamDefaultReader");
      if (r.stream !== undefined) readerRelease(r);
    }
    cancel(reason = undefined) {
      const r = slot(this, "RSR");
      if (r === undefined) return rejected(new TypeError("Illegal invocation"));
      if (r.stream === undefined) return rejected(new TypeError("The reader was released"));
      return readableStreamCancel(r.stream, reason);
    }
  }

  // ---- WritableStream abstract operations ----
  const CLOSE = {}; // the close sentinel in a writable controller's queue
  const initWS = (pub) => {
    const w = {
      kind: "WS", pub, state: "writable", storedError: undefined, writer: undefined, controller: undefined,
      writeRequests: [], inFlightWrite: undefined, closeRequest: undefined, inFlightClose: undefined,
      pendingAbort: undefined, backpressure: false,
    };
    slots.set(pub, w);
    return w;
  };
  const setUpWSController = (w, start, write, close, abort, hwm, size) => {
    const pub = Object.create(WritableStreamDefaultController.prototype);
    const c = {
      kind: "WSC", pub, stream: w, queue: [], queueTotalSize: 0, started: false, hwm, size, write, close, abort,
      abortController: typeof AbortController === "function" ? new AbortController() : undefined,
    };
    slots.set(pub, c);
    w.controller = c;
    wsUpdateBackpressure(w, wsGetBackpressure(c));
    upon(resolved(start(pub)), () => { c.started = true; wsAdvanceQueueIfNeeded(c); },
      (r) => { c.started = true; wsDealWithRejection(w, r); });
  };
  const createWS = (start, write, close, abort, hwm, size) => {
    const w = initWS(Object.create(WritableStream.prototype));
    setUpWSController(w, start, write, close, abort, hwm, size);
    return w;
  };
  const wsCloseQueuedOrInFlight = (w) => w.closeRequest !== undefined || w.inFlightClose !== undefined;
  const wsHasOperationInFlight = (w) => w.inFlightWrite !== undefined || w.inFlightClose !== undefined;
  const wsGetBackpressure = (c) => c.hwm - c.queueTotalSize <= 0;
  const wsClearAlgorithms = (c) => { c.write = resolvedFn; c.close = resolvedFn; c.abort = resolvedFn; c.size = undefined; };
  const wsUpdateBackpressure = (w, backpressure) => {
    const writer = w.writer;
    if (writer !== undefined && backpressure !== w.backpressure) {
      if (backpressure) writer.ready = deferred(); else writer.ready.resolve();
    }
    w.backpressure = backpressure;
  };
  const wsAbort = (w, reason) => {
    if (w.state === "closed" || w.state === "errored") return resolved();
    w.controller.abortController?.abort(reason);
    // Abort listeners run synchronously and may have changed the state.
    const state = w.state;
    if (state === "closed" || state === "errored") return resolved();
    if (w.pendingAbort !== undefined) return w.pendingAbort.d.promise;
    const wasAlreadyErroring = state === "erroring";
    const d = deferred();
    w.pendingAbort = { d, reason: wasAlreadyErroring ? undefined : reason, wasAlreadyErroring };
    if (!wasAlreadyErroring) wsStartErroring(w, reason);
    return d.promise;
  };
  const wsClose = (w) => {
    if (w.state === "closed" || w.state === "errored") return rejected(new TypeError("The stream is closed or errored"));
    const d = deferred();
    w.closeRequest = d;
    if (w.writer !== undefined && w.backpressure && w.state === "writable") w.writer.ready.resolve();
    enqueueWithSize(w.controller, CLOSE, 0);
    wsAdvanceQueueIfNeeded(w.controller);
    return d.promise;
  };
  const wsDealWithRejection = (w, e) => {
    if (w.state === "writable") wsStartErroring(w, e); else wsFinishErroring(w);
  };
  const wsStartErroring = (w, reason) => {
    w.state = "erroring";
    w.storedError = reason;
    if (w.writer !== undefined) writerEnsureRejected(w.writer, "ready", reason);
    if (!wsHasOperationInFlight(w) && w.controller.started) wsFinishErroring(w);
  };
  const wsFinishErroring = (w) => {
    w.state = "errored";
    const c = w.controller;
    resetQueue(c);
    const e = w.storedError;
    for (const request of w.writeRequests) request.reject(e);
    w.writeRequests = [];
    const abort = w.pendingAbort;
    if (abort === undefined) { wsRejectCloseAndClosed(w); return; }
    w.pendingAbort = undefined;
    if (abort.wasAlreadyErroring) { abort.d.reject(e); wsRejectCloseAndClosed(w); return; }
    const p = c.abort(abort.reason);
    wsClearAlgorithms(c);
    upon(p, () => { abort.d.resolve(); wsRejectCloseAndClosed(w); }, (r) => { abort.d.reject(r); wsRejectCloseAndClosed(w); });
  };
  const wsRejectCloseAndClosed = (w) => {
    if (w.closeRequest !== undefined) { w.closeRequest.reject(w.storedError); w.closeRequest = undefined; }
    if (w.writer !== undefined) { w.writer.closed.reject(w.storedError); handled(w.writer.closed.promise); }
  };
  const wsFinishInFlightClose = (w) => {
    w.inFlightClose.resolve();
    w.inFlightClose = undefined;
    if (w.state === "erroring") {
      w.storedError = undefined;
      if (w.pendingAbort !== undefined) { w.pendingAbort.d.resolve(); w.pendingAbort = undefined; }
    }
    w.state = "closed";
    if (w.writer !== undefined) w.writer.closed.resolve();
  };
  const wsFinishInFlightCloseWithError = (w, e) => {
    w.inFlightClose.reject(e);
    w.inFlightClose = undefined;
    if (w.pendingAbort !== undefined) { w.pendingAbort.d.reject(e); w.pendingAbort = undefined; }
    wsDealWithRejection(w, e);
  };
  const wsControllerError = (c, e) => { wsClearAlgorithms(c); wsStartErroring(c.stream, e); };
  const wsControllerErrorIfNeeded = (c, e) => { if (c.stream.state === "writable") wsControllerError(c, e); };
  const wsControllerWrite = (c, chunk, size) => {
    try { enqueueWithSize(c, chunk, size); } catch (e) { wsControllerErrorIfNeeded(c, e); return; }
    const w = c.stream;
    if (!wsCloseQueuedOrInFlight(w) && w.state === "writable") wsUpdateBackpressure(w, wsGetBackpressure(c));
    wsAdvanceQueueIfNeeded(c);
  };
  const wsAdvanceQueueIfNeeded = (c) => {
    const w = c.stream;
    if (!c.started || w.inFlightWrite !== undefined || w.state === "closed" || w.state === "errored") return;
    if (w.state === "erroring") { wsFinishErroring(w); return; }
    if (c.queue.length === 0) return;
    const value = c.queue[0].value;
    if (value === CLOSE) {
      w.inFlightClose = w.closeRequest;
      w.closeRequest = undefined;
      dequeue(c);
      const p = c.close();
      wsClearAlgorithms(c);
      upon(p, () => wsFinishInFlightClose(w), (e) => wsFinishInFlightCloseWithError(w, e));
      return;
    }
    w.inFlightWrite = w.writeRequests.shift();
    upon(c.write(value, c.pub), () => {
      w.inFlightWrite.resolve();
      w.inFlightWrite = undefined;
      dequeue(c);
      if (!wsCloseQueuedOrInFlight(w) && w.state === "writable") wsUpdateBackpressure(w, wsGetBackpressure(c));
      wsAdvanceQueueIfNeeded(c);
    }, (e) => {
      if (w.state === "writable") wsClearAlgorithms(c);
      w.inFlightWrite.reject(e);
      w.inFlightWrite = undefined;
      wsDealWithRejection(w, e);
    });
  };

  const setUpWriter = (pub, w) => {
    if (w.writer !== undefined) throw new TypeError("WritableStream is already locked to a writer");
    const writer = { kind: "WSW", pub, stream: w, ready: undefined, closed: undefined };
    const state = w.state;
    if (state === "writable") {
      writer.ready = !wsCloseQueuedOrInFlight(w) && w.backpressure ? deferred() : settled(true);
      writer.closed = deferred();
    } else if (state === "erroring") {
      writer.ready = settled(false, w.storedError);
      writer.closed = deferred();
    } else if (state === "closed") {
      writer.ready = settled(true);
      writer.closed = settled(true);
    } else {
      writer.ready = settled(false, w.storedError);
      writer.closed = settled(false, w.storedError);
    }
    w.writer = writer;
    slots.set(pub, writer);
    return writer;
  };
  const acquireWriter = (w) => setUpWriter(Object.create(WritableStreamDefaultWriter.prototype), w);
  const writerEnsureRejected = (writer, which, e) => {
    if (writer[which].state === "pending") writer[which].reject(e); else writer[which] = settled(false, e);
    handled(writer[which].promise);
  };
  const writerRelease = (writer) => {
    const e = new TypeError("The writer was released");
    writerEnsureRejected(writer, "ready", e);
    writerEnsureRejected(writer, "closed", e);
    writer.stream.writer = undefined;
    writer.stream = undefined;
  };
  const writerWrite = (writer, chunk) => {
    const w = writer.stream;
    const c = w.controller;
    let size = 1;
    if (c.size !== undefined) {
      try { size = c.size(chunk); } catch (e) { wsControllerErrorIfNeeded(c, e); size = 1; }
    }
    if (w !== writer.stream) return rejected(new TypeError("The writer was released"));
    if (w.state === "errored") return rejected(w.storedError);
    if (wsCloseQueuedOrInFlight(w) || w.state === "closed") return rejected(new TypeError("The stream is closing or closed"));
    if (w.state === "erroring") return rejected(w.storedError);
    const d = deferred();
    w.writeRequests.push(d);
    wsControllerWrite(c, chunk, size);
    return d.promise;
  };
  const writerCloseWithErrorPropagation = (writer) => {
    const w = writer.stream;
    if (wsCloseQueuedOrInFlight(w) || w.state === "closed") return resolved();
    if (w.state === "errored") return rejected(w.storedError);
    return wsClose(w);
  };

  class WritableStream {
    constructor(underlyingSink = undefined, strategy = undefined) {
      const sink = underlyingSink === undefined ? null : underlyingSink;
      const dict = dictionary(sink, "underlyingSink");
      const start = method(dict, "start", "underlyingSink");
      const write = method(dict, "write", "underlyingSink");
      const close = method(dict, "close", "underlyingSink");
      const abort = method(dict, "abort", "underlyingSink");
      if (dict.type !== undefined) throw new RangeError(`Invalid WritableStream type: ${dict.type}`);
      const { hwm, size } = strategyOf(strategy, 1);
      const w = initWS(this);
      setUpWSController(
        w,
        (c) => (start === undefined ? undefined : start.call(sink, c)),
        write === undefined ? resolvedFn : (chunk, c) => promiseCall(write, sink, chunk, c),
        close === undefined ? resolvedFn : () => promiseCall(close, sink),
        abort === undefined ? resolvedFn : (r) => promiseCall(abort, sink, r),
        hwm,
        size,
      );
    }
    get locked() { return check(this, "WS", "WritableStream").writer !== undefined; }
    abort(reason = undefined) {
      const w = slot(this, "WS");
      if (w === undefined) return rejected(new TypeError("Illegal invocation"));
      if (w.writer !== undefined) return rejected(new TypeError("Cannot abort a locked WritableStream"));
      return wsAbort(w, reason);
    }
    close() {
      const w = slot(this, "WS");
      if (w === undefined) return rejected(new TypeError("Illegal invocation"));
      if (w.writer !== undefined) return rejected(new TypeError("Cannot close a locked WritableStream"));
      if (wsCloseQueuedOrInFlight(w)) return rejected(new TypeError("The stream is already closing"));
      return wsClose(w);
    }
    getWriter() { return acquireWriter(check(this, "WS", "WritableStream")).pub; }
  }

  class WritableStreamDefaultController {
    constructor() { throw new TypeError("Illegal constructor"); }
    get signal() { return check(this, "WSC", "WritableStreamDefaultController").abortController?.signal; }
    error(e = undefined) {
      const c = check(this, "WSC", "WritableStreamDefaultController");
      if (c.stream.state === "writable") wsControllerError(c, e);
    }
  }

  class WritableStreamDefaultWriter {
    constructor(stream) {
      const w = slot(stream, "WS");
      if (w === undefined) throw new TypeError("WritableStreamDefaultWriter needs a WritableStream");
      setUpWriter(this, w);
    }
    get closed() {
      const writer = slot(this, "WSW");
      return writer === undefined ? rejected(new TypeError("Illegal invocation")) : writer.closed.promise;
    }
    get ready() {
      const writer = slot(this, "WSW");
      return writer === undefined ? rejected(new TypeError("Illegal invocation")) : writer.ready.promise;
    }
    get desiredSize() {
      const writer = check(this, "WSW", "WritableStreamDefaultWriter");
      const w = writer.stream;
      if (w === undefined) throw new TypeError("The writer was released");
      if (w.state === "errored" || w.state === "erroring") return null;
      return w.state === "closed" ? 0 : w.controller.hwm - w.controller.queueTotalSize;
    }
    abort(reason = undefined) {
      const writer = slot(this, "WSW");
      if (writer === undefined || writer.stream === undefined) return rejected(new TypeError("The writer was released"));
      return wsAbort(writer.stream, reason);
    }
    close() {
      const writer = slot(this, "WSW");
      if (writer === undefined || writer.stream === undefined) return rejected(new TypeError("The writer was released"));
      if (wsCloseQueuedOrInFlight(writer.stream)) return rejected(new TypeError("The stream is already closing"));
      return wsClose(writer.stream);
    }
    releaseLock() {
      const writer = check(this, "WSW", "WritableStreamDefaultWriter");
      if (writer.stream !== undefined) writerRelease(writer);
    }
    write(chunk = undefined) {
      const writer = slot(this, "WSW");
      if (writer === undefined || writer.stream === undefined) return rejected(new TypeError("The writer was released"));
      return writerWrite(writer, chunk);
    }
  }

  // ---- TransformStream ----
  // `backpressure` mirrors whether the readable side wants more; while it is
  // set, writes wait on `backpressureChange`, which is what keeps a producer
  // from completing writes before the consumer has read.
  const tsSetBackpressure = (t, backpressure) => {
    if (t.backpressureChange !== undefined) t.backpressureChange.resolve();
    t.backpressureChange = deferred();
    t.backpressure = backpressure;
  };
  const tsUnblockWrite = (t) => { if (t.backpressure) tsSetBackpressure(t, false); };
  const tsClearAlgorithms = (c) => { c.transform = resolvedFn; c.flush = resolvedFn; c.cancel = resolvedFn; };
  const tsErrorWritableAndUnblockWrite = (t, e) => {
    tsClearAlgorithms(t.controller);
    wsControllerErrorIfNeeded(t.writable.controller, e);
    tsUnblockWrite(t);
  };
  const tsError = (t, e) => { rsControllerError(t.readable.controller, e); tsErrorWritableAndUnblockWrite(t, e); };
  const tsEnqueue = (c, chunk) => {
    const t = c.stream;
    const rc = t.readable.controller;
    if (!rsCanCloseOrEnqueue(rc)) throw new TypeError("The readable side is not in a state that permits enqueue");
    try { rsEnqueue(rc, chunk); } catch (e) { tsErrorWritableAndUnblockWrite(t, e); throw t.readable.storedError; }
    if (!rsShouldCallPull(rc) !== t.backpressure) tsSetBackpressure(t, true);
  };
  const tsPerformTransform = (c, chunk) => c.transform(chunk).then(undefined, (r) => { tsError(c.stream, r); throw r; });
  const tsSinkWrite = (t, chunk) => {
    const c = t.controller;
    if (!t.backpressure) return tsPerformTransform(c, chunk);
    return t.backpressureChange.promise.then(() => {
      if (t.writable.state === "erroring") throw t.writable.storedError;
      return tsPerformTransform(c, chunk);
    });
  };
  // Shared tail of sink close/abort and source cancel: settle `finish` once the
  // transformer's flush/cancel settles, then settle the other side to match.
  // `finish` is set before the algorithm runs so that re-entrant calls from it
  // (a cancel() that aborts the writable) share the same outcome.
  const tsFinish = (t, algorithm, other, onFulfilled, onRejected) => {
    const c = t.controller;
    c.finish = deferred();
    const p = algorithm();
    tsClearAlgorithms(c);
    upon(p, () => {
      if (other.state === "errored") { c.finish.reject(other.storedError); return; }
      onFulfilled();
      c.finish.resolve();
    }, (r) => { onRejected(r); c.finish.reject(r); });
    return c.finish.promise;
  };
  const tsSinkAbort = (t, reason) => {
    const c = t.controller;
    if (c.finish !== undefined) return c.finish.promise;
    const rc = t.readable.controller;
    return tsFinish(t, () => c.cancel(reason), t.readable,
      () => rsControllerError(rc, reason), (r) => rsControllerError(rc, r));
  };
  const tsSinkClose = (t) => {
    const c = t.controller;
    if (c.finish !== undefined) return c.finish.promise;
    const rc = t.readable.controller;
    return tsFinish(t, () => c.flush(), t.readable, () => rsClose(rc), (r) => rsControllerError(rc, r));
  };
  const tsSourceCancel = (t, reason) => {
    const c = t.controller;
    if (c.finish !== undefined) return c.finish.promise;
    const wc = t.writable.controller;
    return tsFinish(t, () => c.cancel(reason), t.writable,
      () => { wsControllerErrorIfNeeded(wc, reason); tsUnblockWrite(t); },
      (r) => { wsControllerErrorIfNeeded(wc, r); tsUnblockWrite(t); });
  };
  const tsSourcePull = (t) => {
    tsSetBackpressure(t, false);
    return t.backpressureChange.promise;
  };

  class TransformStream {
    constructor(transformer = undefined, writableStrategy = undefined, readableStrategy = undefined) {
      const tr = transformer === undefined ? null : transformer;
      const dict = dictionary(tr, "transformer");
      const start = method(dict, "start", "transformer");
      const transform = method(dict, "transform", "transformer");
      const flush = method(dict, "flush", "transformer");
      const cancel = method(dict, "cancel", "transformer");
      if (dict.readableType !== undefined) throw new RangeError("Invalid readableType");
      if (dict.writableType !== undefined) throw new RangeError("Invalid writableType");
      const rs = strategyOf(readableStrategy, 0);
      const ws = strategyOf(writableStrategy, 1);
      const t = {
        kind: "TS", pub: this, readable: undefined, writable: undefined,
        backpressure: undefined, backpressureChange: undefined, controller: undefined,
      };
      slots.set(this, t);
      const startPromise = deferred();
      const startAlgorithm = () => startPromise.promise;
      t.writable = createWS(startAlgorithm, (chunk) => tsSinkWrite(t, chunk), () => tsSinkClose(t),
        (r) => tsSinkAbort(t, r), ws.hwm, ws.size);
      t.readable = createRS(startAlgorithm, () => tsSourcePull(t), (r) => tsSourceCancel(t, r), rs.hwm, rs.size);
      tsSetBackpressure(t, true);
      const pub = Object.create(TransformStreamDefaultController.prototype);
      const c = { kind: "TSC", pub, stream: t, finish: undefined };
      slots.set(pub, c);
      t.controller = c;
      c.transform = transform === undefined
        ? (chunk) => { try { tsEnqueue(c, chunk); return resolved(); } catch (e) { return rejected(e); } }
        : (chunk) => promiseCall(transform, tr, chunk, pub);
      c.flush = flush === undefined ? resolvedFn : () => promiseCall(flush, tr, pub);
      c.cancel = cancel === undefined ? resolvedFn : (r) => promiseCall(cancel, tr, r);
      startPromise.resolve(start === undefined ? undefined : start.call(tr, pub));
    }
    get readable() { return check(this, "TS", "TransformStream").readable.pub; }
    get writable() { return check(this, "TS", "TransformStream").writable.pub; }
  }

  class TransformStreamDefaultController {
    constructor() { throw new TypeError("Illegal constructor"); }
    get desiredSize() {
      return rsDesiredSize(check(this, "TSC", "TransformStreamDefaultController").stream.readable.controller);
    }
    enqueue(chunk = undefined) { tsEnqueue(check(this, "TSC", "TransformStreamDefaultController"), chunk); }
    error(reason = undefined) { tsError(check(this, "TSC", "TransformStreamDefaultController").stream, reason); }
    terminate() {
      const t = check(this, "TSC", "TransformStreamDefaultController").stream;
      rsClose(t.readable.controller);
      tsErrorWritableAndUnblockWrite(t, new TypeError("The TransformStream was terminated"));
    }
  }

  // ---- queuing strategies ----
  // One size function per strategy type, shared by all instances, as specified.
  const byteLengthSize = { size(chunk) { return chunk.byteLength; } }.size;
  const countSize = { size() { return 1; } }.size;
  const strategyInit = (init, name) => {
    const dict = dictionary(init, `${name} init`);
    if (dict.highWaterMark === undefined) throw new TypeError(`${name} requires a highWaterMark`);
    return Number(dict.highWaterMark);
  };
  class ByteLengthQueuingStrategy {
    constructor(init) { slots.set(this, { kind: "BLQS", hwm: strategyInit(init, "ByteLengthQueuingStrategy") }); }
    get highWaterMark() { return check(this, "BLQS", "ByteLengthQueuingStrategy").hwm; }
    get size() { check(this, "BLQS", "ByteLengthQueuingStrategy"); return byteLengthSize; }
  }
  class CountQueuingStrategy {
    constructor(init) { slots.set(this, { kind: "CQS", hwm: strategyInit(init, "CountQueuingStrategy") }); }
    get highWaterMark() { return check(this, "CQS", "CountQueuingStrategy").hwm; }
    get size() { check(this, "CQS", "CountQueuingStrategy"); return countSize; }
  }

  // ---- text encoding streams ----
  const transformPair = (kind, self, transformer, extra) => {
    slots.set(self, { kind, ts: slot(new TransformStream(transformer), "TS"), ...extra });
  };
  class TextEncoderStream {
    constructor() {
      const encoder = new TextEncoder();
      // A surrogate pair may be split across chunks: hold a trailing high
      // surrogate until the next chunk says what it pairs with.
      let pending = "";
      transformPair("TES", this, {
        transform(chunk, c) {
          let text = pending + `${chunk}`;
          pending = "";
          const last = text.charCodeAt(text.length - 1);
          if (last >= 0xd800 && last <= 0xdbff) { pending = text.slice(-1); text = text.slice(0, -1); }
          if (text !== "") c.enqueue(encoder.encode(text));
        },
        flush(c) { if (pending !== "") c.enqueue(new Uint8Array([0xef, 0xbf, 0xbd])); },
      });
    }
    get encoding() { check(this, "TES", "TextEncoderStream"); return "utf-8"; }
    get readable() { return check(this, "TES", "TextEncoderStream").ts.readable.pub; }
    get writable() { return check(this, "TES", "TextEncoderStream").ts.writable.pub; }
  }

  const asBytes = (chunk) => {
    if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
    if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    throw new TypeError("TextDecoderStream chunks must be ArrayBuffer or ArrayBufferView");
  };
  // Length of the prefix of `b` that holds only whole characters.
  const utf8Complete = (b) => {
    const n = b.length;
    for (let i = n - 1; i >= 0 && i >= n - 4; i--) {
      const x = b[i];
      if ((x & 0xc0) === 0x80) continue;
      const need = x >= 0xf0 ? 4 : x >= 0xe0 ? 3 : x >= 0xc0 ? 2 : 1;
      return n - i < need ? i : n;
    }
    return n;
  };
  const utf16Complete = (b, littleEndian) => {
    let end = b.length - (b.length % 2);
    if (end >= 2) {
      const high = littleEndian ? b[end - 1] : b[end - 2];
      if (high >= 0xd8 && high <= 0xdb) end -= 2;
    }
    return end;
  };
  class TextDecoderStream {
    constructor(label = "utf-8", options = undefined) {
      const dict = dictionary(options, "options");
      const fatal = !!dict.fatal, ignoreBOM = !!dict.ignoreBOM;
      const probe = new TextDecoder(label, { fatal, ignoreBOM });
      const encoding = probe.encoding;
      // QuickJS's TextDecoder ignores `{ stream: true }`, so for the Unicode
      // encodings characters split across chunks are reassembled here and the
      // decoder only ever sees whole characters (with the BOM handled once, at
      // the start). Other encodings rely on the decoder's own streaming mode.
      const complete = encoding === "utf-8" ? utf8Complete
        : encoding === "utf-16le" ? (b) => utf16Complete(b, true)
        : encoding === "utf-16be" ? (b) => utf16Complete(b, false)
        : undefined;
      const decoder = complete === undefined ? probe : new TextDecoder(label, { fatal, ignoreBOM: true });
      const bom = encoding === "utf-8" ? [0xef, 0xbb, 0xbf] : encoding === "utf-16le" ? [0xff, 0xfe] : [0xfe, 0xff];
      let carry = new Uint8Array(0);
      let atStart = !ignoreBOM;
      const startsWithBom = (b, n) => bom.slice(0, n).every((x, i) => b[i] === x);
      transformPair("TDS", this, {
        transform(chunk, c) {
          const bytes = asBytes(chunk);
          let out;
          if (complete === undefined) {
            out = decoder.decode(bytes, { stream: true });
          } else {
            let buf = bytes;
            if (carry.length > 0) {
              buf = new Uint8Array(carry.length + bytes.length);
              buf.set(carry);
              buf.set(bytes, carry.length);
            }
            if (atStart) {
              if (buf.length < bom.length && startsWithBom(buf, buf.length)) { carry = buf.slice(); return; }
              atStart = false;
              if (startsWithBom(buf, bom.length)) buf = buf.subarray(bom.length);
            }
            const end = complete(buf);
            carry = buf.slice(end); // a copy: the producer may reuse its buffer
            out = end > 0 ? decoder.decode(buf.subarray(0, end)) : "";
          }
          if (out !== "") c.enqueue(out);
        },
        flush(c) {
          const rest = complete === undefined ? decoder.decode(new Uint8Array(0))
            : carry.length > 0 ? decoder.decode(carry) : "";
          if (rest !== "") c.enqueue(rest);
        },
      }, { encoding, fatal, ignoreBOM });
    }
    get encoding() { return check(this, "TDS", "TextDecoderStream").encoding; }
    get fatal() { return check(this, "TDS", "TextDecoderStream").fatal; }
    get ignoreBOM() { return check(this, "TDS", "TextDecoderStream").ignoreBOM; }
    get readable() { return check(this, "TDS", "TextDecoderStream").ts.readable.pub; }
    get writable() { return check(this, "TDS", "TextDecoderStream").ts.writable.pub; }
  }

  // Web IDL attributes and operations are enumerable, unlike class members.
  for (const C of [
    ReadableStream, ReadableStreamDefaultReader, ReadableStreamDefaultController, ReadableByteStreamController,
    WritableStream, WritableStreamDefaultWriter, WritableStreamDefaultController, TransformStream,
    TransformStreamDefaultController, ByteLengthQueuingStrategy, CountQueuingStrategy, TextEncoderStream, TextDecoderStream,
  ]) {
    for (const target of [C.prototype, C]) {
      for (const key of Object.getOwnPropertyNames(target)) {
        if (!["constructor", "prototype", "length", "name"].includes(key)) {
          Object.defineProperty(target, key, { enumerable: true });
        }
      }
    }
    Object.defineProperty(C.prototype, Symbol.toStringTag, { value: C.name, configurable: true });
  }

  return {
    ReadableStream, ReadableStreamDefaultReader, ReadableStreamDefaultController, WritableStream,
    WritableStreamDefaultWriter, TransformStream, TransformStreamDefaultController, ByteLengthQueuingStrategy,
    CountQueuingStrategy, TextEncoderStream, TextDecoderStream,
  };
};
