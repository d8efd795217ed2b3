// The Convex ecosystem, unchanged: npm packages published as CommonJS in the
// default runtime, "use node" actions running in Node.js (node: built-ins,
// CommonJS that require()s built-ins, env, logs, errors, calls in both
// directions), and deploys that refuse what Convex refuses and warn about
// what Convect does not serve yet.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { useServer } from "./harness.mjs";
import { api, rejects, rejectsOnBothClients, SERVER_ERROR } from "./support.mjs";

const srv = useServer(async (server) => {
  await server.setEnv("ECOSYSTEM_GREETING", "hello from env");
  await server.deploy("ecosystem");
});
const test = srv.test;

const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const md5 = (text) => createHash("md5").update(text).digest("hex");

test("a query uses a CommonJS-only npm package", async (t, server) => {
  const client = server.client();
  const base64 = await client.query(api.encoding.encode, { text: "héllo ✓" });
  assert.equal(base64, Buffer.from("héllo ✓").toString("base64"));
  assert.equal(await client.query(api.encoding.decode, { base64 }), "héllo ✓");
});

test("a use node action runs in Node.js with node:crypto", async (t, server) => {
  const result = await server.client().action(api.nodeCrypto.digest, { text: "abc" });
  assert.equal(result.sha256, sha256("abc"));
  assert.equal(result.runtime, `node ${process.version}`);
});

test("CommonJS code in a node action can require Node built-ins", async (t, server) => {
  const client = server.client();
  assert.equal(await client.action(api.nodeCrypto.legacyDigest, { text: "abc" }), md5("abc"));
  const random = await client.action(api.nodeCrypto.random, {});
  assert.equal(Buffer.from(random, "base64").length, 12);
});

test("a default-runtime action calls a node action through runAction", async (t, server) => {
  const result = await server.client().action(api.encoding.digestViaNode, { text: "via node" });
  assert.equal(result.sha256, sha256("via node"));
});

test("a node action calls queries through runQuery", async (t, server) => {
  assert.equal(await server.client().action(api.nodeCrypto.roundTrip, { text: "round ✓" }), "round ✓");
});

test("node actions see the deployment's environment and return their log lines", async (t, server) => {
  const logs = [];
  const client = server.client({ logger: { logVerbose() {}, log: (...a) => logs.push(a.join(" ")), warn() {}, error() {} } });
  client.setAdminAuth(server.adminKey);
  assert.equal(await client.action(api.nodeCrypto.envAndLogs, {}), "hello from env");
  assert.ok(logs.some((line) => line.includes("from node") && line.includes("42")), JSON.stringify(logs));
});

test("node actions log timers as Convex's Node.js runtime does", async (t, server) => {
  const res = await fetch(`${server.url}/api/action`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path: "nodeCrypto:timers", args: [{}], format: "convex_encoded_json" }),
  });
  const { status, logLines } = await res.json();
  assert.equal(status, "success");
  assert.equal(logLines.length, 2, JSON.stringify(logLines));
  assert.match(logLines[0], /^\[INFO\] 'foo: \d+ms' 'bar'$/);
  assert.match(logLines[1], /^\[INFO\] 'foo: \d+ms'$/);
});

test("node action modules load from convex:/user/ URLs, as user code sees in its stacks", async (t, server) => {
  const stack = await server.client().action(api.nodeCrypto.ownStack, {});
  const inner = stack.indexOf("at inner (convex:/user/nodeCrypto.js:");
  const outer = stack.indexOf("at outer (convex:/user/nodeCrypto.js:");
  assert.ok(inner > 0 && outer > inner, stack);
});

test("internal node actions are not callable by clients", async (t, server) => {
  await rejects(server.client().action(api.nodeCrypto.envAndLogs, {}), "Could not find public function");
});

test("a node action's error reaches the client as on Convex, its frames mapped to the source", async (t, server) => {
  // Node's own frames, the worker's and the convex package's wrappers are left out.
  const frame = String.raw`\n    at handler \(\.\./functions-\d+/nodeCrypto\.ts:\d+:\d+\)\n`;
  const pattern = `${SERVER_ERROR}Uncaught Error: node action failed on purpose${frame}`;
  await rejectsOnBothClients(t, server, "action", api.nodeCrypto.fails, {}, pattern);
});

test("a node action's failing runQuery shows the query's frames, then the action's awaiting frame", async (t, server) => {
  // As on Convex: the query's error as the message, a blank line, then the
  // V8 async frame of the action that awaited it.
  const query = String.raw`\n    at handler \(\.\./functions-\d+/encoding\.ts:\d+:\d+\)\n`;
  const caller = String.raw`\n    at async handler \(\.\./functions-\d+/nodeCrypto\.ts:\d+:\d+\)\n`;
  const pattern = `${SERVER_ERROR}Uncaught Error: Uncaught Error: query failed on purpose${query}${caller}`;
  await rejectsOnBothClients(t, server, "action", api.nodeCrypto.callsFailingQuery, {}, pattern);
});

test("a use node file that exports a query is refused with Convex's message", async (t, server) => {
  const result = await server.deploy("ecosystem", { overlays: ["ecosystem-node-query"], check: false });
  assert.notEqual(result.code, 0);
  assert.match(
    result.output,
    /`notAllowed` defined in `"nodeQuery\.js"` is a Query function\. Only actions can be defined in Node\.js\./,
  );
  // The previous deployment keeps serving.
  assert.equal((await server.client().action(api.nodeCrypto.digest, { text: "x" })).sha256, sha256("x"));
});

test("deploy warns about files Convect accepts but does not serve", async (t, server) => {
  const result = await server.deploy("ecosystem", { overlays: ["ecosystem-unserved"] });
  assert.match(result.output, /warning: .*convex\.config\.ts: components are not supported by Convect yet/);
  // HTTP actions and crons are served (tests/http_actions.test.mjs, tests/crons.test.mjs).
  assert.doesNotMatch(result.output, /HTTP action|cron/);
});
