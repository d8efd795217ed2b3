// Convect's runtime prelude: evaluated once per JavaScript context, before any user
// module. It installs console capture, determinism for queries and mutations, a
// fetch for actions, and the entry points the Rust side calls (from shared.js,
// evaluated just before). The host object `__convect_host` (log, asyncOp) is
// installed by the runtime first.
(() => {
  "use strict";
  const host = globalThis.__convect_host;
  delete globalThis.__convect_host;

  // ---- console: captured per execution as Convex-style log lines ----
  // Values as Convex's runtime prints them (it formats each argument with
  // object-inspect): strings quoted, `{ a: 1, b: [ 2, 3 ] }`, `Map (1) {'a' => 1}`,
  // `[Function: f]`, `[Error: boom]`, nesting past 5 levels as `[Object]`.
  const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
  const quote = (s) => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'").replace(/\n/g, "\\n")}'`;
  const primitive = (v) => {
    switch (typeof v) {
      case "string": return quote(v);
      case "bigint": return `${v}n`;
      case "number": return Object.is(v, -0) ? "-0" : String(v);
      case "function": return v.name ? `[Function: ${v.name}]` : "[Function (anonymous)]";
      case "symbol": return v.toString();
      case "object": return v === null ? "null" : undefined;
      default: return String(v);
    }
  };
  const inspect = (v, depth, seen) => {
    const simple = primitive(v);
    if (simple !== undefined) return simple;
    if (seen.includes(v)) return "[Circular]";
    if (v instanceof Error) return `[${v.name}: ${v.message}]`;
    if (v instanceof Date) return Number.isNaN(v.getTime()) ? "Invalid Date" : v.toISOString();
    if (v instanceof ArrayBuffer) return `ArrayBuffer { byteLength: ${v.byteLength} }`;
    if (depth >= 5) return Array.isArray(v) ? "[Array]" : "[Object]";
    const inner = (x) => inspect(x, depth + 1, [...seen, v]);
    if (Array.isArray(v)) return v.length === 0 ? "[]" : `[ ${v.map(inner).join(", ")} ]`;
    if (v instanceof Map) return `Map (${v.size}) {${[...v].map(([k, x]) => `${inner(k)} => ${inner(x)}`).join(", ")}}`;
    if (v instanceof Set) return `Set (${v.size}) {${[...v].map(inner).join(", ")}}`;
    const proto = Object.getPrototypeOf(v);
    const tag = proto && proto !== Object.prototype && proto.constructor?.name ? `${proto.constructor.name} ` : "";
    const fields = Object.keys(v).map((k) => `${IDENTIFIER.test(k) ? k : quote(k)}: ${inner(v[k])}`);
    return fields.length === 0 ? `${tag}{}` : `${tag}{ ${fields.join(", ")} }`;
  };
  const show = (v, top) => (top && typeof v === "string" ? v : inspect(v, 0, []));
  const { console: consoleObj, reset: resetConsole } = convectConsole({
    log: (line) => host.log(line),
    show,
    now: () => RealDate.now(),
  });
  globalThis.console = consoleObj;

  // ---- determinism: seeded Math.random and a fixed clock per execution ----
  const RealDate = Date;
  let fixedNow = null;
  let state = [1, 2, 3, 4];
  const seeded = () => {
    // sfc32: a small, well-distributed generator; its state is reset per execution.
    let [a, b, c, d] = state;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    state = [a, b, c, d];
    return (t >>> 0) / 4294967296;
  };
  const realRandom = Math.random;
  class ConvectDate extends RealDate {
    constructor(...args) {
      if (args.length === 0 && fixedNow !== null) super(fixedNow);
      else super(...args);
    }
    static now() {
      return fixedNow !== null ? fixedNow : RealDate.now();
    }
  }
  globalThis.Date = ConvectDate;

  // crypto comes from llrt_crypto, whose random functions always draw from the OS;
  // queries and mutations get seeded versions of the two that Convex code uses.
  const cryptoObj = globalThis.crypto;
  const realGetRandomValues = cryptoObj.getRandomValues;
  const realRandomUUID = cryptoObj.randomUUID;
  const seededGetRandomValues = (array) => {
    if (!ArrayBuffer.isView(array) || array instanceof Float32Array || array instanceof Float64Array || array instanceof DataView) {
      throw new TypeError("getRandomValues: expected an integer TypedArray");
    }
    if (array.byteLength > 65536) throw new Error("QuotaExceededError: The requested length exceeds 65,536 bytes");
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (seeded() * 256) | 0;
    return array;
  };
  const seededRandomUUID = () => {
    const b = seededGetRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  };

  const forbidden = (what) => () => {
    throw new Error(`${what} is not allowed in queries and mutations; call it from an action.`);
  };

  // ---- fetch for actions, over the host's HTTP client ----
  // Headers, Request and Response are llrt_fetch's classes, installed by the runtime.
  const fetchImpl = async (input, init = {}) => {
    const req = new Request(input, { method: init.method, headers: init.headers });
    const headers = [];
    req.headers.forEach((v, k) => headers.push([k, v]));
    const body = init.body === undefined || init.body === null ? null : await new Response(init.body).text();
    const res = JSON.parse(
      await host.asyncOp("convect/fetch", JSON.stringify({ url: req.url, method: req.method, headers, body })),
    );
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers: res.headers, url: res.url });
  };
  const sleep = (ms) => host.asyncOp("convect/sleep", JSON.stringify({ ms: Math.max(0, Number(ms) || 0) }));
  const setTimeoutImpl = (f, ms, ...args) => {
    sleep(ms).then(() => f(...args));
    return 0;
  };

  globalThis.process = { env: {} };

  /** Sets up the globals for one execution. */
  const begin = (kind, { seed, nowMs, env }) => {
    const deterministic = kind !== "action";
    resetConsole();
    globalThis.process.env = { ...env };
    if (deterministic) {
      fixedNow = nowMs;
      state = [seed | 0, (seed / 4294967296) | 0, 0x9e3779b9, 0x85ebca6b];
      for (let i = 0; i < 12; i++) seeded();
      Math.random = seeded;
      cryptoObj.getRandomValues = seededGetRandomValues;
      cryptoObj.randomUUID = seededRandomUUID;
      globalThis.fetch = forbidden("fetch()");
      globalThis.setTimeout = forbidden("setTimeout()");
      globalThis.setInterval = forbidden("setInterval()");
    } else {
      fixedNow = null;
      Math.random = realRandom;
      cryptoObj.getRandomValues = realGetRandomValues;
      cryptoObj.randomUUID = realRandomUUID;
      globalThis.fetch = fetchImpl;
      globalThis.setTimeout = setTimeoutImpl;
      globalThis.setInterval = forbidden("setInterval()");
    }
  };

  const { invoke, analyze, describeError } = convectEntryPoints({ show, begin });

  // ---- HTTP actions: a buffered request in, a response out ----
  // The request is `{ method, url, path, headers: [[name, value]], body }`,
  // the body in base64. A response whose body is a stream goes out as it is
  // produced: its head, then each chunk (http_actions/stream.rs; a chunk's
  // syscall resolves once the server queued it, so a slow client slows the
  // stream). Any other comes back whole as `{ status, headers, body }`.
  // Routing is the router's own `lookup`, answering an unrouted request as
  // convex/server's `runRequest` does (which needs syscalls of Convex's
  // runtime we do not have).
  const { streamOf, toBytes } = convectStreamBodies();
  const toBase64 = (bytes) => Buffer.from(bytes).toString("base64");
  const hostCall = async (op, args) => JSON.parse(await hostAsyncSyscall(op, JSON.stringify(args)));
  const success = (value) => JSON.stringify({ ok: true, value: JSON.stringify(value) });
  const serializeResponse = async (response) => {
    const headers = [];
    response.headers.forEach((value, name) => headers.push([name, value]));
    const stream = streamOf(response);
    if (stream === undefined) {
      return success({ status: response.status, headers, body: toBase64(await response.arrayBuffer()) });
    }
    await hostCall("convect/httpResponseHead", { status: response.status, headers });
    for await (const chunk of stream) {
      const bytes = toBytes(chunk);
      if (bytes.length > 0) await hostCall("convect/httpResponseChunk", { chunk: toBase64(bytes) });
    }
    return success({ streamed: true });
  };
  const invokeHttp = async (ns, _exportName, _kind, requestJson, metaJson) => {
    begin("action", JSON.parse(metaJson));
    try {
      const router = ns.default;
      if (!router?.isRouter) throw new Error("The default export of http.js is not an HttpRouter (httpRouter() from convex/server).");
      const { method, url, path, headers, body } = JSON.parse(requestJson);
      const match = router.lookup(path, method);
      if (!match) return await serializeResponse(new Response(`No HttpAction routed for ${path}`, { status: 404 }));
      const bytes = body === null ? undefined : Buffer.from(body, "base64");
      const request = new Request(url, { method, headers, body: bytes });
      return await serializeResponse(await match[0].invokeHttpAction(request));
    } catch (e) {
      return JSON.stringify(describeError(e));
    }
  };
  globalThis.__convect = { invoke, invokeHttp, analyze };
  Convex.jsSyscall = convectJsSyscall;

  // ---- ctx.runQuery/runMutation inside queries and mutations (`1.0/runUdf`) ----
  // The called function runs here, in this execution and its transaction; the host
  // checks the call and keeps a savepoint (`convect/runUdf/start`), then returns its
  // checked result or undoes its writes (`convect/runUdf/finish`).
  const hostAsyncSyscall = Convex.asyncSyscall;
  const hostSyscall = Convex.syscall;
  const runNested = async (argsJson) => {
    const call = JSON.parse(hostSyscall("convect/runUdf/start", argsJson));
    let value;
    try {
      const fn = (await import(call.module))[call.export];
      value = call.kind === "query" ? await fn.invokeQuery(call.args) : await fn.invokeMutation(call.args);
    } catch (e) {
      hostSyscall("convect/runUdf/finish", "{}");
      // As the host reports a failed call: the callee's `Uncaught ...` message, and
      // ConvexError data as convex-encoded JSON, which convex/server rethrows.
      const { message, data } = describeError(e);
      const error = new Error(message);
      if (data !== undefined) error.data = JSON.parse(data);
      throw error;
    }
    return hostSyscall("convect/runUdf/finish", JSON.stringify({ value }));
  };

  // ---- `at async` frames, which QuickJS does not keep ----
  // When an awaited syscall fails (an action's `ctx.runQuery`), convex/server
  // creates the error the user sees in the continuation, whose stack holds no
  // frame of the code that awaited it. V8 lists those as `at async ...`, and
  // Convex shows them; so the syscall wrapper remembers the frames it was called
  // from, and the next error created, that continuation's, gets them appended.
  let capturingSites = false;
  let awaitedFrom = null;
  const frameLine = (site, prefix) => {
    const where = site.isNative() ? "native" : `${site.getFileName()}:${site.getLineNumber()}:${site.getColumnNumber()}`;
    return `    at ${prefix}${site.getFunctionName() ?? "<anonymous>"} (${where})\n`;
  };
  // Renders frames as QuickJS does by default, plus any remembered callers.
  Error.prepareStackTrace = (_error, sites) => {
    if (capturingSites) return sites;
    const callers = awaitedFrom ?? "";
    awaitedFrom = null;
    return sites.map((site) => frameLine(site, "")).join("") + callers;
  };
  const callerFrames = () => {
    capturingSites = true;
    try {
      return new Error().stack.map((site) => frameLine(site, "async ")).join("");
    } finally {
      capturingSites = false;
    }
  };
  const rememberingCallers = (promise, callers) =>
    promise.catch((e) => {
      awaitedFrom = callers;
      // Forgotten once the continuation this rejection queues has run (two hops later).
      Promise.resolve()
        .then(() => {})
        .then(() => {
          if (awaitedFrom === callers) awaitedFrom = null;
        });
      throw e;
    });
  Convex.asyncSyscall = (op, argsJson) => {
    const callers = callerFrames();
    const result = op === "1.0/runUdf" ? runNested(argsJson) : hostAsyncSyscall(op, argsJson);
    return rememberingCallers(result, callers);
  };
})();
