// End-to-end tests of compatibility details apps rely on: live queries over a
// table that does not exist yet update when its first document arrives;
// process.env (deployment variables while modules load and run, the built-in
// CONVEX_CLOUD_URL / CONVEX_SITE_URL, live queries re-run when a variable
// changes); ConvexHttpClient.consistentQuery (/api/query_ts, /api/query_at_ts);
// and console timers and counters in Convex's log line format.
import assert from "node:assert/strict";
import { test as nodeTest } from "node:test";
import { randomBytes } from "node:crypto";
import { ConvexClient } from "convex/browser";
import WebSocket from "ws";
import { startServer, useServer } from "./harness.mjs";
import { api, rejects, waitFor } from "./support.mjs";

const WAIT_MS = 15_000;

const srv = useServer(async (server) => {
  await server.deploy("compat_env");
});
const test = srv.test;

/** A table name no test has used: the table does not exist yet. */
const freshTable = () => `fresh_${randomBytes(6).toString("hex")}`;

/** A ConvexClient over WebSocket, closed when the test ends. */
function liveClient(t, server) {
  const client = new ConvexClient(server.url, {
    webSocketConstructor: WebSocket,
    logger: false,
    unsavedChangesWarning: false,
  });
  t.after(() => client.close());
  return client;
}

/** Every value `onUpdate` delivered for one subscription, in order. */
function watch(client, query, args) {
  const values = [];
  const errors = [];
  client.onUpdate(query, args, (v) => values.push(v), (e) => errors.push(e));
  return { values, errors, latest: () => values.at(-1) };
}

const until = (predicate, what) => waitFor(predicate, WAIT_MS, what);

/** POSTs JSON to the server; resolves to {status, body} (body parsed if JSON). */
async function post(server, route, body) {
  const res = await fetch(`${server.url}${route}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // A plain-text error message.
  }
  return { status: res.status, body: parsed };
}

test("live queries over a table that does not exist yet see its first document", async (t, server) => {
  const table = freshTable();
  const client = liveClient(t, server);
  const list = watch(client, api.tables.list, { table });
  const first = watch(client, api.tables.first, { table });
  const count = watch(client, api.tables.count, { table });
  await until(
    () => list.values.length && first.values.length && count.values.length,
    "the first results",
  );
  assert.deepStrictEqual(list.latest(), []);
  assert.equal(first.latest(), null);
  assert.equal(count.latest(), 0);

  // Inserted by another client: this creates the table.
  await server.client().mutation(api.tables.insert, { table, n: 1 });
  await until(() => list.latest()?.length === 1, "the list to show the first document");
  await until(() => first.latest() !== null, "first() to return the first document");
  await until(() => count.latest() === 1, "the count to become 1");
  assert.equal(list.latest()[0].n, 1);
  assert.equal(first.latest().n, 1);
  assert.deepStrictEqual([list.errors, first.errors, count.errors], [[], [], []]);
});

test("a client's own first insert into a new table is in its results when the mutation resolves", async (t, server) => {
  const table = freshTable();
  const client = liveClient(t, server);
  const list = watch(client, api.tables.list, { table });
  await until(() => list.values.length === 1, "the first result");
  assert.deepStrictEqual(list.latest(), []);
  await client.mutation(api.tables.insert, { table, n: 7 });
  assert.deepStrictEqual(
    list.latest().map((d) => d.n),
    [7],
    "the subscription missed the insert that created its table",
  );
});

test("a live query of process.env updates when the variable is set, changed and removed", async (t, server) => {
  const name = `LIVE_${randomBytes(4).toString("hex").toUpperCase()}`;
  const client = liveClient(t, server);
  const value = watch(client, api.env.get, { name });
  await until(() => value.values.length === 1, "the first result");
  assert.equal(value.latest(), null);

  await server.setEnv(name, "one");
  await until(() => value.latest() === "one", "the query to see the new variable");
  await server.setEnv(name, "two");
  await until(() => value.latest() === "two", "the query to see the changed variable");
  await server.cli(["env", "remove", name], { admin: true });
  await until(() => value.latest() === null, "the query to see the variable removed");
  assert.deepStrictEqual(value.errors, []);
  assert.equal(await server.client().query(api.env.get, { name }), null);
});

test("CONVEX_CLOUD_URL and CONVEX_SITE_URL are set in queries and actions", async (t, server) => {
  const expected = { cloud: server.url, site: server.siteUrl };
  const client = server.client();
  assert.deepStrictEqual(await client.query(api.env.urlsInQuery, {}), expected);
  assert.deepStrictEqual(await client.action(api.env.urlsInAction, {}), expected);
});

test("the built-in variables cannot be set or removed", async (t, server) => {
  for (const name of ["CONVEX_CLOUD_URL", "CONVEX_SITE_URL"]) {
    const set = await server.cli(["env", "set", name, "https://elsewhere.example"], {
      admin: true,
      check: false,
    });
    assert.notEqual(set.code, 0, set.output);
    assert.match(set.output, new RegExp(`${name}.*built-in and cannot be overridden`));
    const removed = await server.cli(["env", "remove", name], { admin: true, check: false });
    assert.notEqual(removed.code, 0, removed.output);
  }
  const urls = await server.client().query(api.env.urlsInQuery, {});
  assert.deepStrictEqual(urls, { cloud: server.url, site: server.siteUrl });
});

test("invalid variable names are refused as Convex refuses them", async (t, server) => {
  for (const name of ["1_STARTS_WITH_DIGIT", "HAS-DASH", "A".repeat(41)]) {
    const res = await server.cli(["env", "set", name, "x"], { admin: true, check: false });
    assert.notEqual(res.code, 0, `${name} was accepted`);
    assert.match(res.output, /environment variable name/);
  }
});

test("consistentQuery reads every query at one timestamp", async (t, server) => {
  const table = freshTable();
  const writer = server.client();
  await writer.mutation(api.tables.insert, { table, n: 1 });

  const consistent = server.client();
  const before = await consistent.consistentQuery(api.tables.list, { table });
  assert.deepStrictEqual(before.map((d) => d.n), [1]);
  await writer.mutation(api.tables.insert, { table, n: 2 });
  // Still the timestamp of the client's first consistentQuery.
  assert.deepStrictEqual(await consistent.consistentQuery(api.tables.list, { table }), before);
  assert.equal(await consistent.consistentQuery(api.tables.count, { table }), 1);
  // Plain queries and a new client read the latest state.
  assert.equal(await consistent.query(api.tables.count, { table }), 2);
  assert.equal(await server.client().consistentQuery(api.tables.count, { table }), 2);
});

test("query_at_ts refuses timestamps it did not hand out", async (t, server) => {
  const { status, body } = await post(server, "/api/query_ts");
  assert.equal(status, 200);
  assert.equal(typeof body.ts, "string");
  const args = [{ table: freshTable() }];
  const path = "tables:count";
  const ok = await post(server, "/api/query_at_ts", { path, args, ts: body.ts, format: "convex_encoded_json" });
  assert.equal(ok.status, 200);
  assert.deepStrictEqual([ok.body.status, ok.body.value], ["success", 0]);

  const future = Buffer.alloc(8);
  future.writeBigUInt64LE(2n ** 63n);
  for (const ts of ["not a timestamp", future.toString("base64"), undefined]) {
    const bad = await post(server, "/api/query_at_ts", { path, args, ts, format: "convex_encoded_json" });
    assert.equal(bad.status, 400, `ts ${ts}: ${JSON.stringify(bad.body)}`);
  }
});

test("console timers, counters, assert and table produce Convex-style log lines", async (t, server) => {
  const run = async () => {
    const res = await post(server, "/api/query", {
      path: "console:timersAndCounters",
      args: [{}],
      format: "convex_encoded_json",
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.logLines;
  };
  const lines = await run();
  const expected = [
    /^\[INFO\] work: \d+ms 'halfway' \{ step: 1 \}$/,
    /^\[INFO\] work: \d+ms$/,
    /^\[WARN\] Timer 'work' does not exist$/,
    /^\[WARN\] Timer 'never' does not exist$/,
    /^\[WARN\] Timer 'default' already exists$/,
    /^\[INFO\] default: \d+ms$/,
    /^\[INFO\] default: 1$/,
    /^\[INFO\] default: 2$/,
    /^\[INFO\] apples: 1$/,
    /^\[INFO\] default: 1$/,
    /^\[WARN\] Count for 'pears' does not exist$/,
    /^\[ERROR\] Assertion failed: 'failed' 42$/,
    /^\[ERROR\] Assertion failed$/,
    /^\[LOG\] \[ \{ a: 1 \} \]$/,
  ];
  assert.equal(lines.length, expected.length, lines.join("\n"));
  lines.forEach((line, i) => assert.match(line, expected[i]));
  // Timers and counters belong to one execution: a second run starts afresh
  // (no "already exists" for the timer left running, counts from 1 again).
  const again = await run();
  assert.equal(again.length, expected.length, again.join("\n"));
  again.forEach((line, i) => assert.match(line, expected[i]));
});

test("logged values read as Convex's runtime prints them (object-inspect)", async (t, server) => {
  const res = await post(server, "/api/query", { path: "console:formats", args: [{}], format: "convex_encoded_json" });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.deepStrictEqual(res.body.logLines, [
    "[LOG] { a: 1, b: [ 2, 3 ], 'not-an-identifier': 'x' } 'text' 7n null undefined -0",
    "[LOG] Map (1) {'k' => 1} Set (2) {1, 2} [] {} [Function: named] [Function (anonymous)]",
    "[LOG] { l1: { l2: { l3: { l4: { l5: [Object] } } } } } { name: 'loop', self: [Circular] } 'it\\'s\\nquoted'",
    "[LOG] [Error: boom]",
  ]);
});

test("the same lines reach ConvexHttpClient's logger", async (t, server) => {
  // The client logs each line as (`%c[CONVEX Q(path)] [LEVEL]`, color, message).
  const captured = [];
  const client = server.client({
    logger: {
      log: (head, _color, message) => captured.push(`${head.split(" ").at(-1)} ${message}`),
      warn: (...args) => captured.push(`warn: ${args.join(" ")}`),
      error: (...args) => captured.push(`error: ${args.join(" ")}`),
      logVerbose: () => {},
    },
  });
  await client.query(api.console.timersAndCounters, {});
  assert.ok(captured.includes("[INFO] apples: 1"), captured.join("\n"));
  assert.ok(captured.includes("[WARN] Timer 'never' does not exist"), captured.join("\n"));
  assert.deepStrictEqual(captured.filter((c) => c.startsWith("error:")), []);
});

// On a server of its own: the module cannot load until the variable is set.
nodeTest("a module that reads process.env when it loads deploys once the variable is set", { timeout: 300_000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.cleanup());
  try {
    await moduleLevelEnv(t, server);
  } catch (err) {
    err.message += `\n${server.tail(200)}`;
    throw err;
  }
});

async function moduleLevelEnv(t, server) {
  const overlays = ["compat_env_toplevel"];
  const missing = await server.deploy("compat_env", { overlays, check: false });
  assert.notEqual(missing.code, 0, "deployed although COMPAT_API_KEY is not set");
  assert.match(missing.output, /COMPAT_API_KEY is not set/);

  await server.setEnv("COMPAT_API_KEY", "key-1");
  await server.deploy("compat_env", { overlays });
  const http = server.client();
  assert.equal(await http.query(api.client.apiKey, {}), "key-1/key-1");

  // Modules load again with the new value, and live queries re-run.
  const client = liveClient(t, server);
  const key = watch(client, api.client.apiKey, {});
  await until(() => key.latest() === "key-1/key-1", "the first result");
  await server.setEnv("COMPAT_API_KEY", "key-2");
  await until(() => key.latest() === "key-2/key-2", "the module-level value to change");
  assert.equal(await http.query(api.client.apiKey, {}), "key-2/key-2");

  // Removing the variable breaks the module at load, as in Convex; clients see
  // the error instead of a stale value.
  await server.cli(["env", "remove", "COMPAT_API_KEY"], { admin: true });
  await rejects(http.query(api.client.apiKey, {}), "COMPAT_API_KEY is not set");
}

// Behind a proxy: the public URLs come from `--cloud-url` and CONVECT_SITE_URL.
nodeTest("the built-in URLs follow serve's --cloud-url and CONVECT_SITE_URL", { timeout: 300_000 }, async (t) => {
  const cloud = "https://api.convect.example";
  const site = "https://site.convect.example";
  const server = await startServer({ args: ["--cloud-url", cloud], env: { CONVECT_SITE_URL: site } });
  t.after(() => server.cleanup());
  try {
    await server.deploy("compat_env");
    const client = server.client();
    assert.deepStrictEqual(await client.query(api.env.urlsInQuery, {}), { cloud, site });
    assert.deepStrictEqual(await client.action(api.env.urlsInAction, {}), { cloud, site });
  } catch (err) {
    err.message += `\n${server.tail(200)}`;
    throw err;
  }
});
