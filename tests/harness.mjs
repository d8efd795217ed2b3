// Test harness for the end-to-end suite: starts `convect serve` on free ports
// with a fresh data directory, runs the CLI (codegen, deploy, env, import,
// run) against it, stops it gracefully or with kill -9 and restarts it on the
// same data, and prints the server's output when a test fails.
//
// Environment: CONVECT_BIN (default <repo>/target/debug/convect),
// CONVECT_KEEP_TMP=1 keeps the temporary directories for inspection.
import { after, before, test } from "node:test";
import { spawn } from "node:child_process";
import { cp, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConvexHttpClient } from "convex/browser";

export const REPO = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "..",
);
export const BIN =
  process.env.CONVECT_BIN ?? path.join(REPO, "target", "debug", "convect");
export const FIXTURES = path.join(REPO, "tests", "fixtures");
// Work directories live inside the repository (git-ignored /tmp/) so that the
// bundler resolves `convex` from the repository's node_modules.
const WORK_ROOT = path.join(REPO, "tmp");

const READY_TIMEOUT_MS = 60_000;
const CLI_TIMEOUT_MS = 180_000;

const running = new Set();
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

export async function freePort() {
  return await new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a command; resolves to {code, signal, stdout, stderr, output}. */
export function runProcess(file, args, { env, timeoutMs = CLI_TIMEOUT_MS } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      env: cleanEnv(env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s) => (stdout += s));
    child.stderr.setEncoding("utf8").on("data", (s) => (stderr += s));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`));
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, output: stdout + stderr });
    });
  });
}

// The harness always passes --url/--admin-key explicitly; stray variables
// from the developer's shell must not change what the CLI talks to.
function cleanEnv(extra) {
  const env = { ...process.env, ...extra };
  if (!extra?.CONVECT_URL) delete env.CONVECT_URL;
  if (!extra?.CONVECT_ADMIN_KEY) delete env.CONVECT_ADMIN_KEY;
  return env;
}

function describeRun(args, result) {
  return (
    `convect ${args.join(" ")} exited with ${result.code ?? result.signal}\n` +
    `--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`
  );
}

export class Server {
  /** `serve` adds arguments and environment variables for `convect serve`. */
  constructor(work, port, sitePort, serve = {}) {
    this.work = work;
    this.dataDir = path.join(work, "data");
    this.port = port;
    this.sitePort = sitePort;
    this.url = `http://127.0.0.1:${port}`;
    this.siteUrl = `http://127.0.0.1:${sitePort}`;
    this.log = [];
    this.child = null;
    this.exited = null;
    this.adminKey = null;
    this.serve = serve;
  }

  async start() {
    const args = ["serve", "--data", this.dataDir, "--port", String(this.port)];
    args.push("--site-port", String(this.sitePort), ...(this.serve.args ?? []));
    this.note(`starting: ${BIN} ${args.join(" ")}`);
    const child = spawn(BIN, args, {
      env: cleanEnv(this.serve.env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.exited = null;
    running.add(child);
    const exited = new Promise((resolve) => {
      child.on("exit", (code, signal) => {
        running.delete(child);
        this.exited = { code, signal };
        this.note(`server exited (${code ?? signal})`);
        resolve(this.exited);
      });
    });
    this.exitPromise = exited;
    child.on("error", (err) => this.note(`spawn error: ${err.message}`));
    for (const stream of [child.stdout, child.stderr]) {
      let partial = "";
      stream.setEncoding("utf8").on("data", (chunk) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop();
        this.log.push(...lines);
      });
    }
    await this.waitReady();
    this.adminKey = await this.readAdminKey();
    return this;
  }

  note(line) {
    this.log.push(`[harness] ${line}`);
  }

  async waitReady() {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(`server exited before it was ready\n${this.tail()}`);
      }
      try {
        const res = await fetch(`${this.url}/version`, {
          signal: AbortSignal.timeout(1000),
        });
        await res.arrayBuffer();
        if (res.status === 200) return;
      } catch {
        // Not listening yet.
      }
      await sleep(50);
    }
    throw new Error(`server not ready after ${READY_TIMEOUT_MS} ms\n${this.tail()}`);
  }

  async readAdminKey() {
    const file = path.join(this.dataDir, "admin_key");
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        const key = (await readFile(file, "utf8")).trim();
        if (key !== "") return key;
      } catch (err) {
        if (err.code !== "ENOENT") throw err;
      }
      if (Date.now() > deadline) throw new Error(`${file} was not written`);
      await sleep(50);
    }
  }

  /** Graceful stop (SIGTERM); resolves to {code, signal}. */
  async stop(timeoutMs = 15_000) {
    if (!this.child || this.exited) return this.exited;
    this.child.kill("SIGTERM");
    let timer;
    const result = await Promise.race([
      this.exitPromise,
      new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
    if (!result) {
      this.child.kill("SIGKILL");
      await this.exitPromise;
      throw new Error(`server did not exit within ${timeoutMs} ms of SIGTERM`);
    }
    return result;
  }

  /** kill -9: no chance to flush or clean up. */
  async kill() {
    if (!this.child || this.exited) return this.exited;
    this.child.kill("SIGKILL");
    return await this.exitPromise;
  }

  /** Starts again on the same data directory and ports. */
  async restart() {
    if (this.child && !this.exited) await this.stop();
    this.note("restarting on the same data directory");
    return await this.start();
  }

  async cleanup() {
    if (this.child && !this.exited) {
      try {
        await this.stop();
      } catch {
        // Already SIGKILLed by stop().
      }
    }
    if (process.env.CONVECT_KEEP_TMP !== "1") {
      await rm(this.work, { recursive: true, force: true });
    }
  }

  tail(lines = 200, since = 0) {
    const slice = this.log.slice(Math.max(since, this.log.length - lines));
    return `--- server output (${this.url}, data ${this.dataDir}) ---\n${slice.join("\n")}`;
  }

  /** A ConvexHttpClient for this server; function log lines are dropped. */
  client(options = {}) {
    return new ConvexHttpClient(this.url, { logger: false, ...options });
  }

  /** `--url URL --admin-key KEY`, for tests of the CLI's flags. */
  adminFlags() {
    return ["--url", this.url, "--admin-key", this.adminKey];
  }

  /**
   * Runs the CLI; with check (default) a non-zero exit throws. With admin,
   * the server and key are given as CONVECT_URL / CONVECT_ADMIN_KEY, which
   * every admin command accepts wherever its subcommand puts the flags.
   */
  async cli(args, { check = true, admin = false } = {}) {
    const env = admin
      ? { CONVECT_URL: this.url, CONVECT_ADMIN_KEY: this.adminKey }
      : undefined;
    const result = await runProcess(BIN, args, { env });
    this.note(`cli: convect ${args.join(" ")} -> ${result.code ?? result.signal}`);
    if (check && result.code !== 0) {
      throw new Error(`${describeRun(args, result)}\n${this.tail(80)}`);
    }
    return result;
  }

  /** A prepared (copied + codegen'd) functions folder; see prepareFunctions. */
  async prepare(source, overlays = []) {
    return await prepareFunctions(this.work, source, overlays, (args) => this.cli(args));
  }

  /** codegen + deploy; resolves to the deploy's CLI result. */
  async deploy(source, { overlays = [], check = true } = {}) {
    const dir = await this.prepare(source, overlays);
    return await this.cli(["deploy", dir], { check, admin: true });
  }

  /** `convect import --table TABLE FILES... [--upsert-by FIELD]`. */
  async importTable(table, files, { upsertBy, check = true } = {}) {
    const args = ["import", "--table", table, ...files];
    if (upsertBy) args.push("--upsert-by", upsertBy);
    return await this.cli(args, { admin: true, check });
  }

  async setEnv(name, value) {
    return await this.cli(["env", "set", name, value], { admin: true });
  }
}

/** A fresh work directory under <repo>/tmp/ (removed by the caller). */
export async function makeWorkDir() {
  await mkdir(WORK_ROOT, { recursive: true });
  return await mkdtemp(path.join(WORK_ROOT, "e2e-"));
}

let prepared = 0;

/**
 * Copies a functions folder (a name under tests/fixtures or an absolute
 * path) plus overlay folders (later files win) into `work`, without any
 * _generated/, and runs `convect codegen` on the copy. Returns its path.
 */
export async function prepareFunctions(work, source, overlays = [], cli) {
  const dir = path.join(work, "src", `functions-${++prepared}`);
  await mkdir(dir, { recursive: true });
  for (const from of [source, ...overlays]) {
    const abs = path.resolve(FIXTURES, from);
    await cp(abs, dir, {
      recursive: true,
      filter: (file) => {
        const rel = path.relative(abs, file).split(path.sep);
        return !rel.includes("_generated") && !rel.includes("node_modules");
      },
    });
  }
  const args = ["codegen", dir];
  if (cli) {
    await cli(args);
  } else {
    const result = await runProcess(BIN, args);
    if (result.code !== 0) throw new Error(describeRun(args, result));
  }
  return dir;
}

/**
 * Starts a server with a fresh data directory on free ports; `serve.args` and
 * `serve.env` are extra arguments and environment variables for `convect serve`.
 */
export async function startServer(serve = {}) {
  const work = await makeWorkDir();
  const server = new Server(work, await freePort(), await freePort(), serve);
  try {
    return await server.start();
  } catch (err) {
    await server.cleanup().catch(() => {});
    throw err;
  }
}

/**
 * Shares one server across the tests of the current file or describe block:
 * `setup(server)` runs once after start (e.g. a deploy). Returns a handle
 * with `server` and a `test(name, fn, options)` that prints the server's
 * output produced during the test when it fails. `serve` is as for startServer.
 */
export function useServer(setup, serve = {}) {
  const handle = {
    server: null,
    test(name, fn, options = {}) {
      return test(name, { timeout: 120_000, ...options }, async (t) => {
        const server = handle.server;
        if (!server) throw new Error("server did not start (see before hook)");
        const mark = server.log.length;
        try {
          return await fn(t, server);
        } catch (err) {
          console.error(`\n[${name}] failed; ${server.tail(300, mark)}\n`);
          throw err;
        }
      });
    },
  };
  before(
    async () => {
      handle.server = await startServer(serve);
      try {
        if (setup) await setup(handle.server);
      } catch (err) {
        err.message += `\n${handle.server.tail(120)}`;
        throw err;
      }
    },
    { timeout: 300_000 },
  );
  after(async () => {
    await handle.server?.cleanup();
  });
  return handle;
}
