// What both function runtimes share: the entry points and the console. The QuickJS
// isolate evaluates this file before prelude.js, the Node.js worker before
// node/worker.js, each in a scope of its own. For the entry points the runtime
// passes `show` (how a thrown non-Error value reads), `begin(kind, meta)` (sets
// up the globals of one execution) and optionally `locate(frames)` (rewrites
// frame locations to module paths, `dir/file.js:L:C`, where they are not).
const convectEntryPoints = ({ show, begin, locate = (frames) => frames }) => {
  /** Names of the constructors of an Error subclass instance (`ConvexError`). */
  const subclassConstructors = (e) => {
    const names = new Set();
    for (let p = Object.getPrototypeOf(e); p && p !== Error.prototype && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
      if (typeof p.constructor === "function") names.add(p.constructor.name);
    }
    return names;
  };

  /**
   * The frames (`    at ...` lines) that end an error's stack, from where the
   * error was constructed. V8 starts its stack with the error's name and
   * message, QuickJS does not; QuickJS also lists the constructors of Error
   * subclasses (`at ConvexError (...)`), which V8 leaves out.
   */
  const framesOf = (e) => {
    const lines = typeof e.stack === "string" ? e.stack.trimEnd().split("\n") : [];
    let first = lines.length;
    while (first > 0 && /^\s+at /.test(lines[first - 1])) first--;
    const constructors = subclassConstructors(e);
    const calledIn = (line) => constructors.has(/^\s+at (?:new )?(\S+)/.exec(line)?.[1]);
    while (first < lines.length && calledIn(lines[first])) first++;
    return locate(lines.slice(first).join("\n"));
  };

  /**
   * A thrown value as the JSON outcome `{ ok: false, message, stack, data? }`;
   * the engine maps `stack` through the source maps and appends it.
   */
  const describeError = (e) => {
    if (e instanceof Error || (typeof e === "object" && e !== null && "message" in e)) {
      const name = e.name || "Error";
      const out = { ok: false, message: `Uncaught ${name}: ${e.message}`, stack: framesOf(e) };
      // A ConvexError subclass keeps its own name (`Uncaught FooError: ...`), as on Convex.
      if (e.ConvexErrorSymbol !== undefined || (typeof e.data === "string" && name === "ConvexError")) {
        out.data = e.data;
      }
      return out;
    }
    return { ok: false, message: `Uncaught ${show(e, true)}` };
  };

  const kinds = { query: "isQuery", mutation: "isMutation", action: "isAction" };
  /** Invokes one exported function; always resolves to a JSON outcome. */
  const invoke = async (ns, exportName, kind, argsJson, metaJson) => {
    const meta = JSON.parse(metaJson);
    begin(kind, meta);
    try {
      const fn = ns[exportName];
      if (!fn || !fn[kinds[kind]]) {
        return JSON.stringify({ ok: false, message: `"${exportName}" is not a ${kind} function.` });
      }
      const value =
        kind === "query" ? await fn.invokeQuery(argsJson)
        : kind === "mutation" ? await fn.invokeMutation(argsJson)
        : await fn.invokeAction(meta.requestId, argsJson);
      return JSON.stringify({ ok: true, value });
    } catch (e) {
      return JSON.stringify(describeError(e));
    }
  };

  /** Describes a module's exported functions and special default exports. */
  const analyze = (ns) => {
    const functions = [];
    for (const name of Object.keys(ns)) {
      const f = ns[name];
      if (typeof f !== "function" && typeof f !== "object") continue;
      if (f === null) continue;
      const kind = f.isQuery ? "query" : f.isMutation ? "mutation" : f.isAction ? "action" : f.isHttp ? "httpAction" : null;
      if (kind === null) continue;
      functions.push({
        name,
        kind,
        visibility: f.isInternal ? "internal" : "public",
        args: typeof f.exportArgs === "function" ? f.exportArgs() : null,
        returns: typeof f.exportReturns === "function" ? f.exportReturns() : null,
      });
    }
    const d = ns.default;
    const exported = (marker) => (d && typeof d.export === "function" && marker ? d.export() : null);
    const schema = exported(d?.tables !== undefined);
    const crons = exported(d?.isCrons);
    const authConfig = Array.isArray(d?.providers) ? JSON.stringify(d) : null;
    return JSON.stringify({ functions, schema, crons, authConfig, isRouter: !!(d && d.isRouter) });
  };

  return { describeError, invoke, analyze };
};

// Console capture for both runtimes: Convex-style log lines (`[LOG] ...`) handed
// to `log`, values rendered by the runtime's `show`, timers read from `now` (real
// time, even where Date.now() is fixed). Returns the console and a `reset` that
// forgets timers and counters between executions.
// `inspectTimers`: Convex's Node.js runtime logs a timer's `label: 12ms` like any
// other string argument (quoted); its default runtime writes it as is.
const convectConsole = ({ log, show, now, inspectTimers = false }) => {
  const format = (args) => args.map((a) => show(a, false)).join(" ");
  const levels = { log: "LOG", info: "INFO", warn: "WARN", error: "ERROR", debug: "DEBUG" };
  const consoleObj = {};
  for (const [name, level] of Object.entries(levels)) {
    consoleObj[name] = (...args) => log(`[${level}] ${format(args)}`);
  }
  consoleObj.trace = consoleObj.debug;

  // Lines follow Convex: `[INFO] label: 12ms`, `[WARN] Timer 'label' does not exist`.
  const timers = new Map();
  const counts = new Map();
  const labelOf = (label) => (label === undefined ? "default" : String(label));
  const warn = (message) => log(`[WARN] ${message}`);
  const elapsed = (name) => `${name}: ${now() - timers.get(name)}ms`;
  const timer = (name) => (inspectTimers ? show(elapsed(name), false) : elapsed(name));
  consoleObj.time = (label) => {
    const name = labelOf(label);
    if (timers.has(name)) warn(`Timer '${name}' already exists`);
    else timers.set(name, now());
  };
  consoleObj.timeLog = (label, ...data) => {
    const name = labelOf(label);
    if (!timers.has(name)) return warn(`Timer '${name}' does not exist`);
    log(`[INFO] ${[timer(name), ...data.map((a) => show(a, false))].join(" ")}`);
  };
  consoleObj.timeEnd = (label) => {
    const name = labelOf(label);
    if (!timers.has(name)) return warn(`Timer '${name}' does not exist`);
    log(`[INFO] ${timer(name)}`);
    timers.delete(name);
  };
  consoleObj.count = (label) => {
    const name = labelOf(label);
    const n = (counts.get(name) ?? 0) + 1;
    counts.set(name, n);
    log(`[INFO] ${name}: ${n}`);
  };
  consoleObj.countReset = (label) => {
    const name = labelOf(label);
    if (counts.has(name)) counts.set(name, 0);
    else warn(`Count for '${name}' does not exist`);
  };
  // As in browsers and Node: nothing when the condition holds.
  consoleObj.assert = (condition, ...data) => {
    if (condition) return;
    log(`[ERROR] Assertion failed${data.length > 0 ? `: ${format(data)}` : ""}`);
  };
  // The console standard lets `table` log its data as-is instead of drawing a table.
  consoleObj.table = consoleObj.log;
  const reset = () => {
    timers.clear();
    counts.clear();
  };
  return { console: consoleObj, reset };
};

// `Convex.jsSyscall` for both runtimes: the syscalls convex/server makes with
// values JSON cannot carry. An action's `ctx.storage.store(blob)` and `get(id)`
// pass `Blob`s; their bytes travel to the host in base64 through the async
// syscalls a mutation's `storage` would use (`1.0/storageStore`, `1.0/storageGet`).
const convectJsSyscall = async (op, args) => {
  const call = async (name, callArgs) => JSON.parse(await Convex.asyncSyscall(name, JSON.stringify(callArgs)));
  switch (op) {
    case "storage/storeBlob": {
      const { blob, options } = args;
      if (!(blob instanceof Blob)) throw new Error("store() expects a Blob.");
      const bytes = Buffer.from(await blob.arrayBuffer()).toString("base64");
      return await call("1.0/storageStore", { blob: bytes, contentType: blob.type || null, sha256: options?.sha256 });
    }
    case "storage/getBlob": {
      const file = await call("1.0/storageGet", { storageId: args.storageId });
      return file === null ? null : new Blob([Buffer.from(file.blob, "base64")], { type: file.contentType ?? "" });
    }
    default:
      throw new Error(`\`${op}\` is not supported by Convect yet`);
  }
};
