// The Node.js worker for "use node" actions, evaluated after shared.js (which defines
// `convectEntryPoints`). Convect starts it with a socket on fd 3 and exchanges
// newline-delimited JSON frames there, because stdout and stderr belong to user code.
// One execution at a time; imported bundles stay in Node's module cache, so a warm
// worker loads each bundle once.
import net from "node:net";
import path from "node:path";
import util from "node:util";
import { createRequire, register } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";

// Module loader hooks, run by Node.js in a thread of their own: `convex:/user/<path>`
// is the bundle's file `<root><path>`, and a package a bundle imports (an external
// one) resolves from the bundle's folder.
const LOADER_HOOKS =
  "data:text/javascript," +
  encodeURIComponent(`
const USER = "convex:/user/";
let root;
export function initialize(data) { root = data.root; }
const toFile = (url) => root + url.slice(USER.length);
export async function resolve(specifier, context, next) {
  if (specifier.startsWith(USER)) return { url: specifier, shortCircuit: true };
  const parent = context.parentURL;
  if (!parent?.startsWith(USER)) return next(specifier, context);
  if (specifier.startsWith("./") || specifier.startsWith("../")) {
    return { url: new URL(specifier, parent).href, shortCircuit: true };
  }
  return next(specifier, { ...context, parentURL: toFile(parent) });
}
export async function load(url, context, next) {
  if (!url.startsWith(USER)) return next(url, context);
  const { source } = await next(toFile(url), { ...context, format: "module" });
  return { format: "module", source, shortCircuit: true };
}
`);

const channel = new net.Socket({ fd: 3, readable: true, writable: true });
const send = (frame) => channel.write(JSON.stringify(frame) + "\n");

// Bundled CommonJS reads these free variables, which ES modules lack; as on
// Convex, they name the worker's own file.
globalThis.__filename = fileURLToPath(import.meta.url);
globalThis.__dirname = path.dirname(globalThis.__filename);

/** Id of the running execution; every frame the worker sends carries it. */
let call = null;

// ---- console: captured as Convex-style log lines of the running execution ----
// Values read as Node's own inspect shows them; strings are quoted, as on Convex.
const show = (v, top) => (top && typeof v === "string" ? v : util.inspect(v));
const log = (line) => {
  if (call !== null) send({ type: "log", call, line });
  else process.stderr.write(line + "\n"); // between executions: the server's logs
};
const { console: captured, reset: resetConsole } = convectConsole({ log, show, now: () => Date.now(), inspectTimers: true });
// Onto Node's own console, so that methods Convex does not capture still exist.
Object.assign(console, captured);

// ---- the Convex syscall ABI, forwarded to the engine ----
const pending = new Map();
let nextSyscall = 1;
globalThis.Convex = {
  syscall: (op) => {
    throw new Error(`Convex.syscall("${op}") is not available in Node.js actions; only async syscalls are.`);
  },
  asyncSyscall: (op, args) =>
    new Promise((resolve, reject) => {
      if (call === null) {
        reject(new Error(`${op} was called after its action finished; await every call inside the action.`));
        return;
      }
      const id = nextSyscall++;
      pending.set(id, { resolve, reject });
      send({ type: "syscall", call, id, op, args });
    }),
  jsSyscall: convectJsSyscall,
};

const settle = ({ id, ok, value, message, data }) => {
  const p = pending.get(id);
  if (!p) return;
  pending.delete(id);
  if (ok) return p.resolve(value);
  const err = new Error(message);
  if (data !== undefined) err.data = data;
  p.reject(err);
};

// ---- executions ----
/** `process.env` is exactly the deployment's variables, per execution. */
const setEnv = (env) => {
  for (const k of Object.keys(process.env)) delete process.env[k];
  Object.assign(process.env, env);
};
// A worker serves one bundle (the engine sees to it), whose modules load as
// `convex:/user/<path>`, the URLs Convex gives them, so stacks that user code
// reads look as on Convex. A loader hook maps them to the bundle's files.
const USER = "convex:/user/";
let bundleDir = null;
/** Module namespaces by path: `import()` would ask the loader thread every time. */
const loaded = new Map();
const entry = convectEntryPoints({
  show,
  begin: (_kind, meta) => {
    resetConsole();
    setEnv(meta.env);
  },
  // The engine knows a bundle's files by their module paths, as in QuickJS.
  locate: (frames) => frames.replaceAll(USER, ""),
});
const load = (dir, module) => {
  if (bundleDir === null) {
    bundleDir = dir;
    register(LOADER_HOOKS, { data: { root: pathToFileURL(dir + "/").href } });
    // esbuild's `__require` shim in bundled CommonJS code calls the global `require`
    // (for Node built-ins and external packages). One resolving from the bundle's
    // folder finds the external packages its `node_modules` link provides
    // (convex.json's node.externalPackages).
    globalThis.require = createRequire(path.join(dir, "package.json"));
  } else if (bundleDir !== dir) {
    throw new Error(`this worker serves ${bundleDir}, not ${dir}`);
  }
  if (!loaded.has(module)) loaded.set(module, import(USER + module));
  return loaded.get(module);
};

// ---- errors nothing catches (thrown by a callback, a rejection nobody handles) ----
// As Convex's Node.js executor does: they fail the running execution as
// `Uncaught uncaughtException: <message>` (or `unhandledRejection`), and the
// process ends, since Node.js cannot say what state such an error left behind.
// The engine starts a fresh worker for later calls.
const uncaught = (event) => (e) => {
  const message = `Uncaught ${event}: ${e instanceof Error ? e.message : show(e, true)}`;
  if (call === null) {
    process.stderr.write(`${message}\n`);
  } else {
    const { stack } = entry.describeError(e);
    send({ type: "done", call, outcome: JSON.stringify({ ok: false, message, stack }), exiting: true });
  }
  call = null;
  channel.end(() => process.exit(1));
};
process.on("uncaughtException", uncaught("uncaughtException"));
process.on("unhandledRejection", uncaught("unhandledRejection"));

const run = async (f) => {
  // Module top-level code may read the environment, so it is set before loading.
  setEnv(JSON.parse(f.meta).env);
  try {
    const ns = await load(f.dir, f.module);
    return await entry.invoke(ns, f.export, "action", f.argsJson, f.meta);
  } catch (e) {
    return JSON.stringify(entry.describeError(e));
  }
};

const analyze = async (f) => {
  setEnv(f.env);
  const out = {};
  let module;
  try {
    for (module of f.modules) out[module] = JSON.parse(entry.analyze(await load(f.dir, module)));
    return JSON.stringify({ ok: true, value: JSON.stringify(out) });
  } catch (e) {
    const failure = entry.describeError(e);
    failure.message = `Failed to analyze ${module}: ${failure.message}`;
    return JSON.stringify(failure);
  }
};

const execute = async (f, body) => {
  call = f.call;
  const outcome = await body(f);
  send({ type: "done", call: f.call, outcome });
  call = null;
};

const handle = (f) => {
  if (f.type === "result") settle(f);
  else if (f.type === "run") execute(f, run);
  else if (f.type === "analyze") execute(f, analyze);
};

let buffered = "";
channel.setEncoding("utf8");
channel.on("data", (chunk) => {
  buffered += chunk;
  for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    handle(JSON.parse(line));
  }
});
// The engine went away (or closed this worker): nothing is left to do.
channel.on("end", () => process.exit(0));
channel.on("error", () => process.exit(1));
