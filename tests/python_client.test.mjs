// The official PyPI `convex` client against Convect: queries, mutations, a
// ConvexError with data, an action, a subscription following writes, and the
// admin key over the WebSocket, driven by tests/python/client_check.py in a
// virtualenv under the git-ignored tmp/ (created on first run, then reused).
// Skipped only when python3 is not installed; a failing venv or pip install
// fails the test (.ci/run installs python3-venv).
//
// Facts about the client (convex 0.8.1 on PyPI, a pyo3 wrapper around the Rust
// `convex` crate 0.10.4, which is therefore covered too):
// - It opens the WebSocket at `/api/sync` (no version segment) with a
//   `Convex-Client: python-0.8.1` header (`rust-<version>` for the crate alone).
// - Connect carries a fresh UUID session id on every reconnect, `clientTs: 0` and
//   `lastCloseReason`; an admin Authenticate is `{tokenType: "Admin", value,
//   actingAs?}` (convex-js names the identity `impersonating`). After a
//   reconnect it sends Authenticate before its ModifyQuerySet (convex-js: after).
// - It parses Transition versions strictly (querySet, identity, and ts as base64
//   u64) and treats any `TransitionChunk` as a protocol error: large
//   Transitions must reach it whole.
// - A mutation that fails with a ConvexError (`errorData` present) completes
//   only at the next Transition, since its response has no `ts`. Convex sends
//   a Transition after every response; without one the call hangs.
// - `AuthError` and `FatalError` make it reconnect (with backoff) and
//   re-authenticate with the same credentials: a wrong admin key retries forever
//   rather than raising, so that case is tested with convex-js
//   (tests/admin_ws.test.mjs).
// - A subscription yields the latest result once per Transition, so a result
//   can repeat; its queue holds one item, so a slow reader may skip results.
// - `ConvexError.data` carries Convex values: an Int64 arrives as ConvexInt64.
// - The package's legacy `convex.http_client.ConvexHttpClient` (not the default
//   client) relies on Convex's HTTP answers: it rejects integral numbers sent
//   as `1` rather than `1.0` ("Bad JSON value: 1") and reads a function error
//   with a non-2xx status as `{code, message}`; Convex sends `1.0` and answers
//   function errors with 200. Its ConvexError data stays convex-encoded JSON.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { before, test as nodeTest } from "node:test";
import { REPO, runProcess, useServer } from "./harness.mjs";
import { uniqueName } from "./support.mjs";

const CLIENT_VERSION = "0.8.1";
const VENV = path.join(REPO, "tmp", "python-venv");
const VENV_PYTHON = path.join(VENV, "bin", "python");
const SCRIPT = path.join(REPO, "tests", "python", "client_check.py");
const INSTALL_TIMEOUT_MS = 600_000;

const hasPython = !spawnSync("python3", ["--version"]).error;

/** Runs a command to completion; a non-zero exit throws with its output. */
async function run(file, args, timeoutMs) {
  const result = await runProcess(file, args, { timeoutMs });
  if (result.code !== 0) {
    throw new Error(`${file} ${args.join(" ")} exited with ${result.code ?? result.signal}\n${result.output}`);
  }
  return result;
}

/** The venv with the pinned client; made on a fresh clone, reused after. */
async function ensureVenv() {
  if (!existsSync(VENV_PYTHON)) {
    await run("python3", ["-m", "venv", VENV], INSTALL_TIMEOUT_MS);
  }
  await run(
    VENV_PYTHON,
    ["-m", "pip", "install", "--quiet", "--disable-pip-version-check", `convex==${CLIENT_VERSION}`],
    INSTALL_TIMEOUT_MS,
  );
}

if (!hasPython) {
  nodeTest("the PyPI convex client", { skip: "python3 is not installed" }, () => {});
} else {
  defineTests();
}

function defineTests() {
  const srv = useServer(async (server) => {
    await server.deploy("live", { overlays: ["clients"] });
  });
  const test = srv.test;
  let report;

  before(
    async () => {
      await ensureVenv();
      const server = srv.server;
      const args = [SCRIPT, server.url, server.adminKey, uniqueName("py")];
      const result = await runProcess(VENV_PYTHON, args);
      if (result.code !== 0) {
        // Killed by the timeout: the last step on stderr never returned.
        throw new Error(`client_check.py exited with ${result.code ?? result.signal}\n${result.output}\n${server.tail(120)}`);
      }
      // The client prints function log lines on stdout too; the report is last.
      const lines = result.stdout.trim().split("\n");
      report = JSON.parse(lines.at(-1));
    },
    { timeout: INSTALL_TIMEOUT_MS },
  );

  test("the pinned client version ran", () => {
    assert.equal(report.clientVersion, CLIENT_VERSION);
  });

  test("queries and mutations", () => {
    assert.deepEqual(report.emptyList, { value: [] });
    assert.deepEqual(report.sends, [{ value: 1 }, { value: 2 }]);
    assert.deepEqual(report.listAfterSends, { value: ["one", "two"] });
  });

  test("a mutation's ConvexError reaches Python with its data", () => {
    assert.ok(report.refuse.convexError, JSON.stringify(report.refuse));
    assert.deepEqual(report.refuse.convexError.data, {
      reason: "quota",
      limit: { $int64: "3" },
      tags: ["a", "b"],
      nested: { ok: false },
    });
  });

  test("a query's ConvexError reaches Python with its data", () => {
    assert.ok(report.queryConvexError.convexError, JSON.stringify(report.queryConvexError));
    const { data } = report.queryConvexError.convexError;
    assert.equal(data.kind, "missing");
    assert.match(data.name, /^py-.*-missing$/);
  });

  test("an action runs, and its writes are visible to the next query", () => {
    assert.deepEqual(report.action, { value: { sent: "THREE", count: 3 } });
    assert.deepEqual(report.listAfterAction, { value: ["one", "two", "THREE"] });
  });

  test("internal functions stay hidden from a client without the admin key", () => {
    assert.equal(report.internalAsClient.error?.type, "Exception", JSON.stringify(report.internalAsClient));
    assert.match(report.internalAsClient.error.message, /Could not find public function for 'clients:secretList'/);
  });

  test("the legacy HTTP client reads results, ConvexErrors and errors", () => {
    assert.deepEqual(report.legacy.send, { value: 1 });
    assert.deepEqual(report.legacy.refuse.convexError?.data, {
      reason: "old",
      limit: { $integer: "AwAAAAAAAAA=" },
      tags: ["a", "b"],
      nested: { ok: false },
    }, JSON.stringify(report.legacy.refuse));
    const { missing } = report.legacy;
    assert.equal(missing.error?.type, "ConvexExecutionError", JSON.stringify(missing));
    assert.match(
      missing.error.message,
      /^\[Request ID: [a-f0-9]{16}\] Server Error\nCould not find public function for 'clients:nope'\./,
    );
  });

  test("a subscription follows writes of its own client and of another", () => {
    // client_check.py waits for each write before the next, so every state shows.
    assert.deepEqual(report.subscription, [[], ["a"], ["a", "b"], ["a", "b", "c"]]);
  });

  test("with the admin key, internal queries, mutations and actions run over the WebSocket", () => {
    assert.deepEqual(report.admin, {
      send: { value: 1 },
      list: { value: ["s1"] },
      echo: { value: "internal:hi" },
      public: { value: ["s1"] },
    });
  });
}
