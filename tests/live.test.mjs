// End-to-end tests of live queries over the sync protocol (/api/{v}/sync):
// ConvexClient subscriptions see each new result once and their own writes
// when `await mutation()` resolves; writes outside a read set re-execute
// nothing; identical subscriptions share one execution; paginated queries;
// query errors and recovery; reconnects (with a lost mutation response that
// must not apply twice); and a client that stops reading is disconnected
// without stalling the others. Re-executions are counted with the admin-only
// `GET /api/convect/metrics`.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { ConvexClient } from "convex/browser";
import WebSocket from "ws";
import { sleep, useServer } from "./harness.mjs";
import { connect } from "./sockets.mjs";
import { api, ConvexError, range, subscriptionExecutions, uniqueName, waitFor } from "./support.mjs";

const WAIT_MS = 15_000;
const CLIENT_VERSION = "1.48.0";

const srv = useServer(async (server) => {
  await server.deploy("live");
});
const test = srv.test;

const until = (predicate, what, timeoutMs = WAIT_MS) =>
  waitFor(predicate, timeoutMs, what);

/** Records every onUpdate callback (values, errors and both in order). */
function watch(client, query, args) {
  const rec = { values: [], errors: [], events: [] };
  rec.unsubscribe = client.onUpdate(
    query,
    args,
    (value) => {
      rec.values.push(value);
      rec.events.push({ value });
    },
    (error) => {
      rec.errors.push(error);
      rec.events.push({ error });
    },
  );
  rec.latest = () => rec.values.at(-1);
  return rec;
}


const decodeTs = (b64) => Buffer.from(b64, "base64").readBigUInt64LE();

/**
 * Every Transition a socket received starts where the previous one ended
 * (the first at version zero), and versions and timestamps never go back.
 */
function assertTransitionChain(socket) {
  let held = { querySet: 0, identity: 0, ts: 0n };
  let count = 0;
  for (const m of socket.received) {
    if (m.type !== "Transition") continue;
    const start = { ...m.startVersion, ts: decodeTs(m.startVersion.ts) };
    const end = { ...m.endVersion, ts: decodeTs(m.endVersion.ts) };
    assert.deepEqual(start, held, `transition #${count} does not start at the held version`);
    assert.ok(end.ts >= start.ts, `transition #${count} moves ts backwards`);
    assert.ok(end.querySet >= start.querySet && end.identity >= start.identity);
    held = end;
    count++;
  }
  assert.ok(count > 0, "the socket received no Transition");
}

/** The values the server sent in QueryUpdated for the query added as udfPath(args). */
function sentValues(socket, udfPath, args) {
  const ids = new Set();
  for (const m of socket.sent) {
    if (m.type !== "ModifyQuerySet") continue;
    for (const mod of m.modifications) {
      if (
        mod.type === "Add" &&
        mod.udfPath.replace(/\.js:/, ":") === udfPath &&
        JSON.stringify(mod.args) === JSON.stringify([args])
      ) {
        ids.add(mod.queryId);
      }
    }
  }
  assert.equal(ids.size, 1, `expected one Add of ${udfPath}`);
  const values = [];
  for (const m of socket.received) {
    if (m.type !== "Transition") continue;
    for (const mod of m.modifications) {
      if (mod.type === "QueryUpdated" && ids.has(mod.queryId)) values.push(mod.value);
    }
  }
  return values;
}

test("the metrics endpoint requires the admin key", async (t, server) => {
  const anonymous = await fetch(`${server.url}/api/convect/metrics`);
  await anonymous.arrayBuffer();
  assert.ok([401, 403].includes(anonymous.status), `status ${anonymous.status}`);
  const wrong = await fetch(`${server.url}/api/convect/metrics`, {
    headers: { Authorization: "Convex not-the-key" },
  });
  await wrong.arrayBuffer();
  assert.ok([401, 403].includes(wrong.status), `status ${wrong.status}`);
  assert.ok((await subscriptionExecutions(server)) >= 0);
});

test("a subscriber receives each new result exactly once", async (t, server) => {
  const channel = uniqueName("chan");
  const sentinel = uniqueName("sentinel");
  const { client: a, net } = connect(t, server);
  const { client: b } = connect(t, server);
  const list = watch(a, api.messages.list, { channel });
  const marker = watch(a, api.counters.get, { name: sentinel });
  await until(
    () => list.values.length === 1 && marker.values.length === 1,
    "A's first results",
  );
  const expected = [[]];
  for (const body of ["m1", "m2", "m3"]) {
    await b.mutation(api.messages.send, { channel, body });
    expected.push([...expected.at(-1), body]);
    await until(() => list.values.length >= expected.length, `A to see ${body}`);
  }
  // A change to A's other query: a stray re-send of the list caused by the
  // writes above would reach A before it.
  await b.mutation(api.counters.increment, { name: sentinel });
  await until(() => marker.values.length === 2, "A's sentinel update");
  assert.deepEqual(list.values, expected);
  assert.deepEqual(marker.values, [0, 1]);
  assert.deepEqual(list.errors, []);
  // On the wire: one QueryUpdated per distinct result, no repeats.
  assert.deepEqual(sentValues(net.current(), "messages:list", { channel }), expected);
  assertTransitionChain(net.current());
});

test("await mutation resolves with the write visible in the mutator's own subscription", async (t, server) => {
  const channel = uniqueName("own");
  const { client: b, net } = connect(t, server);
  const { client: c } = connect(t, server);
  const list = watch(b, api.messages.list, { channel });
  await until(() => list.values.length === 1, "B's first result");
  // Another client writes to the same channel meanwhile.
  const noise = (async () => {
    for (const i of range(10)) await c.mutation(api.messages.send, { channel, body: `c${i}` });
  })();
  for (const i of range(6)) {
    const body = `b${i}`;
    const n = await b.mutation(api.messages.send, { channel, body });
    // Same tick as the resolution: no I/O or timers ran in between.
    const local = b.client.localQueryResult("messages:list", { channel });
    assert.ok(Array.isArray(local), "B holds a result for its query");
    assert.ok(local.length >= n, `B's list has ${local.length} < ${n} items after its write`);
    assert.equal(local[n - 1], body, `B's write #${n} is not in its list: ${local}`);
    assert.deepEqual(list.latest(), local, "the last onUpdate value is the local result");
  }
  await noise;
  await until(() => list.latest().length === 16, "all 16 messages");
  assert.deepEqual(
    [...list.latest()].sort(),
    [...range(10).map((i) => `c${i}`), ...range(6).map((i) => `b${i}`)].sort(),
  );
  assertTransitionChain(net.current());
});

test("writes outside a subscription's read set do not re-execute it", async (t, server) => {
  const channel = uniqueName("quiet");
  const name = uniqueName("rec");
  const http = server.client();
  await http.mutation(api.records.set, { name, ok: true });
  const { client: a, net } = connect(t, server);
  const list = watch(a, api.messages.list, { channel });
  const record = watch(a, api.records.check, { name });
  await until(
    () => list.values.length === 1 && record.values.length === 1,
    "A's first results",
  );

  let before = await subscriptionExecutions(server);
  for (const i of range(5)) await http.mutation(api.other.touch, { note: `n${i}` });
  // Same table and index, neighbouring ranges: a longer and a shorter channel name.
  for (const neighbour of [`${channel}0`, channel.slice(0, -1), `${channel}\u0000`]) {
    await http.mutation(api.messages.send, { channel: neighbour, body: "elsewhere" });
  }
  // A write the list does read. The server handles commits in order, so
  // once A sees this one every earlier commit has been handled.
  await http.mutation(api.messages.send, { channel, body: "hello" });
  await until(() => list.values.length === 2, "A to see hello");
  let after = await subscriptionExecutions(server);
  assert.equal(after - before, 1, "only the in-range write re-executed a subscription");
  assert.deepEqual(list.values, [[], ["hello"]]);
  assert.equal(record.values.length, 1);

  // A write inside the record query's read set that leaves its result as it
  // was: executed again, but nothing is sent.
  before = after;
  await http.mutation(api.records.set, { name, ok: true });
  await http.mutation(api.messages.send, { channel, body: "again" });
  await until(() => list.values.length === 3, "A to see again");
  after = await subscriptionExecutions(server);
  assert.equal(after - before, 2, "the record write and the message write each re-executed one query");
  assert.deepEqual(record.values, [{ name, ok: true }], "an unchanged result is not sent again");
  assert.deepEqual(sentValues(net.current(), "records:check", { name }), [{ name, ok: true }]);
  assert.deepEqual(record.errors, []);
});

test("twenty clients with the identical query share one execution per write", async (t, server) => {
  const channel = uniqueName("shared");
  const http = server.client();
  const start = await subscriptionExecutions(server);
  const clients = range(20).map(() => connect(t, server).client);
  const subs = clients.map((c) => watch(c, api.messages.list, { channel }));
  await until(() => subs.every((s) => s.values.length === 1), "20 first results");
  let now = await subscriptionExecutions(server);
  assert.equal(now - start, 1, "20 identical subscriptions executed once");
  const expected = [[]];
  for (const i of range(3)) {
    const prev = now;
    await http.mutation(api.messages.send, { channel, body: `s${i}` });
    expected.push([...expected.at(-1), `s${i}`]);
    await until(
      () => subs.every((s) => s.values.length === expected.length),
      `all 20 clients to see s${i}`,
    );
    now = await subscriptionExecutions(server);
    assert.equal(now - prev, 1, `write s${i} re-executed the shared query once`);
  }
  for (const s of subs) {
    assert.deepEqual(s.values, expected);
    assert.deepEqual(s.errors, []);
  }
});

test("queries with different arguments are separate subscriptions", async (t, server) => {
  const left = uniqueName("left");
  const right = uniqueName("right");
  const http = server.client();
  const { client: a } = connect(t, server);
  const { client: b } = connect(t, server);
  const aLeft = watch(a, api.messages.list, { channel: left });
  const aRight = watch(a, api.messages.list, { channel: right });
  const bLeft = watch(b, api.messages.list, { channel: left });
  await until(
    () => [aLeft, aRight, bLeft].every((s) => s.values.length === 1),
    "first results",
  );
  let before = await subscriptionExecutions(server);
  await http.mutation(api.messages.send, { channel: left, body: "x1" });
  await until(() => aLeft.values.length === 2 && bLeft.values.length === 2, "x1 on the left");
  let after = await subscriptionExecutions(server);
  assert.equal(after - before, 1, "only the (shared) left query re-executed");

  before = after;
  await http.mutation(api.messages.send, { channel: right, body: "y1" });
  await until(() => aRight.values.length === 2, "y1 on the right");
  after = await subscriptionExecutions(server);
  assert.equal(after - before, 1, "only the right query re-executed");

  await http.mutation(api.messages.send, { channel: left, body: "x2" });
  await until(() => bLeft.values.length === 3 && aLeft.values.length === 3, "x2 on the left");
  assert.deepEqual(aLeft.values, [[], ["x1"], ["x1", "x2"]]);
  assert.deepEqual(bLeft.values, [[], ["x1"], ["x1", "x2"]]);
  assert.deepEqual(aRight.values, [[], ["y1"]]);
});

test("a paginated subscription covers every document once and follows inserts", async (t, server) => {
  const list = uniqueName("pages");
  const ns = range(25).map((i) => (i + 1) * 10);
  const http = server.client();
  await http.mutation(api.entries.add, { list, ns });
  const { client: a } = connect(t, server);
  const updates = [];
  const errors = [];
  a.onPaginatedUpdate_experimental(
    api.entries.page,
    { list },
    { initialNumItems: 10 },
    (result) => updates.push(result),
    (error) => errors.push(error),
  );
  const latest = () => updates.at(-1);
  const nsOf = (result) => result.results.map((doc) => doc.n);

  await until(() => latest()?.status === "CanLoadMore", "the first page");
  assert.deepEqual(nsOf(latest()), ns.slice(0, 10));
  assert.equal(latest().loadMore(10), true);
  await until(
    () => latest().status === "CanLoadMore" && latest().results.length === 20,
    "the second page",
  );
  assert.deepEqual(nsOf(latest()), ns.slice(0, 20));
  assert.equal(latest().loadMore(10), true);
  await until(() => latest().status === "Exhausted", "the last page");
  assert.deepEqual(nsOf(latest()), ns);
  const ids = latest().results.map((doc) => doc._id);
  assert.equal(new Set(ids).size, ns.length, "a document appears on two pages");

  await http.mutation(api.entries.add, { list, ns: [260] });
  await until(() => nsOf(latest()).includes(260), "the insert at the end");
  assert.deepEqual(nsOf(latest()), [...ns, 260]);
  assert.equal(latest().status, "Exhausted");

  // Inserts inside the first and second loaded pages. Loaded pages keep
  // their end (Convex pins it through the query journal), so no document
  // moves between pages and none is lost or repeated.
  await http.mutation(api.entries.add, { list, ns: [5, 105] });
  await until(
    () => nsOf(latest()).includes(5) && nsOf(latest()).includes(105),
    "the inserts inside loaded pages",
  );
  assert.deepEqual(nsOf(latest()), [5, ...ns.slice(0, 10), 105, ...ns.slice(10), 260]);
  assert.deepEqual(errors, []);
});

test("a failing subscribed query reports errors and recovers when the data is fixed", async (t, server) => {
  const name = uniqueName("rec");
  const http = server.client();
  const { client: a } = connect(t, server);
  const rec = watch(a, api.records.check, { name });

  await until(() => rec.events.length === 1, "the first outcome");
  const missing = rec.events[0].error;
  assert.ok(missing instanceof ConvexError, `expected a ConvexError: ${missing}`);
  assert.deepEqual(missing.data, { kind: "missing", name });

  await http.mutation(api.records.set, { name, ok: false });
  await until(() => rec.events.length === 2, "the second outcome");
  const invalid = rec.events[1].error;
  assert.ok(invalid instanceof Error && !(invalid instanceof ConvexError), `${invalid}`);
  assert.match(invalid.message, new RegExp(`record ${name} is invalid`));

  await http.mutation(api.records.set, { name, ok: true });
  await until(() => rec.events.length === 3, "the recovered result");
  assert.deepEqual(rec.events[2], { value: { name, ok: true } });

  // And it can fail again after succeeding.
  await http.mutation(api.records.set, { name, ok: false });
  await until(() => rec.events.length === 4, "the new failure");
  assert.match(rec.events[3].error?.message ?? "", /is invalid/);
  assert.equal(rec.values.length, 1);
  assert.equal(rec.errors.length, 3);
});

test("reconnect: resubscribes, and a mutation sent again after a lost response applies once", async (t, server) => {
  const channel = uniqueName("re");
  const name = uniqueName("count");
  const http = server.client();
  const { client: a, net } = connect(t, server);
  const list = watch(a, api.messages.list, { channel });
  const count = watch(a, api.counters.get, { name });
  await until(() => list.values.length === 1 && count.values.length === 1, "first results");

  // 1. The socket dies; the client reconnects and gets later updates.
  net.current().kill();
  await until(
    () => net.sockets.length === 2 && net.current().readyState === WebSocket.OPEN,
    "a second connection",
  );
  await http.mutation(api.messages.send, { channel, body: "after-reconnect" });
  await until(() => list.latest()?.includes("after-reconnect"), "the update after reconnect");
  assert.deepEqual(list.latest(), ["after-reconnect"]);
  assert.deepEqual(
    sentValues(net.current(), "messages:list", { channel }),
    [[], ["after-reconnect"]],
    "the new connection starts from a fresh snapshot",
  );

  // 2. A mutation issued while disconnected is applied once, after reconnecting.
  net.current().kill();
  await until(() => !a.connectionState().isWebSocketConnected, "the client to notice");
  const offline = a.mutation(api.counters.increment, { name });
  assert.equal(await offline, 1);
  assert.equal(count.latest(), 1, "the write is visible when the mutation resolves");
  assert.equal(net.sockets.length, 3);
  assert.ok(net.current().sent.some((m) => m.type === "Mutation"));
  assert.equal(await http.query(api.counters.get, { name }), 1);

  // 3. The response to a mutation is lost with its connection: the client
  // sends the same request again on the next connection, and the server
  // answers with the first outcome instead of running it again.
  net.intercept = (message, socket) => {
    if (message.type !== "MutationResponse") return undefined;
    net.intercept = null;
    socket.kill();
    return "drop";
  };
  const result = await a.mutation(api.counters.increment, { name });
  assert.equal(net.sockets.length, 4, "the response was dropped with its connection");
  const sends = net.sockets.flatMap((s, i) =>
    s.sent.filter((m) => m.type === "Mutation").map((m) => ({ socket: i, requestId: m.requestId })),
  );
  const lastId = sends.at(-1).requestId;
  assert.deepEqual(
    sends.filter((s) => s.requestId === lastId).map((s) => s.socket),
    [2, 3],
    "the mutation was sent on the lost connection and again on the new one",
  );
  assert.equal(result, 2, "the re-sent mutation is answered with its first outcome");
  assert.equal(count.latest(), 2);
  assert.equal(await http.query(api.counters.get, { name }), 2, "applied exactly once");

  const connects = net.sockets.map((s) => s.sent.find((m) => m.type === "Connect"));
  assert.equal(new Set(connects.map((c) => c.sessionId)).size, 1, "one client session");
  for (const socket of net.sockets) assertTransitionChain(socket);
});

/** VmRSS of a process, in KiB. */
function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]);
}

const TCP_STATES = {
  "01": "ESTABLISHED",
  "02": "SYN_SENT",
  "03": "SYN_RECV",
  "04": "FIN_WAIT1",
  "05": "FIN_WAIT2",
  "06": "TIME_WAIT",
  "07": "CLOSE",
  "08": "CLOSE_WAIT",
  "09": "LAST_ACK",
  "0A": "LISTEN",
  "0B": "CLOSING",
};

/** The TCP state of the loopback socket localPort -> remotePort ("GONE" if none). */
function tcpState(localPort, remotePort) {
  const hex = (port) => port.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const [, local, remote, state] = line.trim().split(/\s+/);
      if (local?.endsWith(`:${hex(localPort)}`) && remote?.endsWith(`:${hex(remotePort)}`)) {
        return TCP_STATES[state] ?? state;
      }
    }
  }
  return "GONE";
}

async function timed(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test("a client that stops reading is disconnected without stalling the others", async (t, server) => {
  const name = uniqueName("flood");
  const PAD = 64 * 1024;
  const mark = server.log.length;
  const raw = new WebSocket(`${server.url.replace(/^http/, "ws")}/api/${CLIENT_VERSION}/sync`);
  t.after(() => raw.terminate());
  await once(raw, "open");
  const messages = [];
  raw.on("message", (data) => messages.push(JSON.parse(data)));
  raw.on("error", (err) => messages.push({ type: "(socket error)", message: err.message }));
  const closed = new Promise((resolve) => raw.on("close", resolve));
  raw.send(
    JSON.stringify({
      type: "Connect",
      sessionId: randomUUID(),
      connectionCount: 0,
      lastCloseReason: "InitialConnect",
      clientTs: Date.now(),
    }),
  );
  raw.send(
    JSON.stringify({
      type: "ModifyQuerySet",
      baseVersion: 0,
      newVersion: 1,
      modifications: [
        { type: "Add", queryId: 0, udfPath: "counters:padded", args: [{ name, size: PAD }], journal: null },
      ],
    }),
  );
  await until(() => messages.some((m) => m.type === "Transition"), "the first Transition");
  const first = messages.find((m) => m.type === "Transition");
  assert.equal(first.modifications[0]?.type, "QueryUpdated", JSON.stringify(first).slice(0, 300));
  assert.equal(first.modifications[0].value.value, 0);
  assert.equal(first.modifications[0].value.pad.length, PAD);

  // Stop reading (ws's pause() pauses the TCP socket and keeps it paused):
  // from here on the server's writes to this socket pile up.
  raw.pause();
  const clientPort = raw._socket.localPort;
  assert.equal(tcpState(server.port, clientPort), "ESTABLISHED");
  const pid = server.child.pid;
  const rssBefore = rssKiB(pid);

  const deadline = Date.now() + 20_000;
  let stop = false;
  let writes = 0;
  const writer = async () => {
    const http = server.client();
    while (!stop && Date.now() < deadline) {
      await http.mutation(api.counters.increment, { name });
      writes++;
    }
  };
  const writers = writer();
  const latencies = [];
  let serverSide = tcpState(server.port, clientPort);
  let rssPeak = rssBefore;
  // Once the server logs that it ended the session, the socket gets a few
  // seconds to close (this only shortens a failing run).
  let sessionEndLogged = null;
  try {
    while (Date.now() < deadline && serverSide === "ESTABLISHED") {
      if (sessionEndLogged === null && server.log.slice(mark).some((l) => l.includes("closing sync session"))) {
        sessionEndLogged = Date.now();
      }
      if (sessionEndLogged !== null && Date.now() - sessionEndLogged > 5_000) break;
      // A fresh client must get an answer promptly however far behind the
      // stalled one is.
      const started = Date.now();
      const probe = new ConvexClient(server.url, { webSocketConstructor: WebSocket, logger: false });
      try {
        await timed(probe.query(api.counters.get, { name }), 5_000, "a fresh client's query");
      } finally {
        await probe.close();
      }
      latencies.push(Date.now() - started);
      rssPeak = Math.max(rssPeak, rssKiB(pid));
      serverSide = tcpState(server.port, clientPort);
      await sleep(200); // pacing: the probes are not the load
    }
  } finally {
    stop = true;
    await writers;
  }
  const summary =
    `${writes} writes; probe latency max ${Math.max(...latencies)} ms over ${latencies.length} probes; ` +
    `server side of the stalled socket: ${serverSide}; server RSS ${rssBefore} -> peak ${rssPeak} KiB`;
  t.diagnostic(summary);
  assert.ok(latencies.length > 0);
  assert.ok(rssPeak - rssBefore < 128 * 1024, `server memory grew by ${rssPeak - rssBefore} KiB: ${summary}`);
  assert.ok(
    serverSide !== "ESTABLISHED",
    `the server still holds the stalled connection open (${summary}); its log:\n` +
      server.log.slice(mark).filter((l) => l.includes("closing sync session")).join("\n"),
  );

  // Read what reached the socket: then the connection ends, with a
  // FatalError (if any) as the last message.
  raw.resume();
  await timed(closed, 10_000, "the stalled connection's close");
  const received = messages.filter((m) => m.type !== "(socket error)");
  assert.ok(received.length > 1);
  assert.ok(!received.slice(0, -1).some((m) => m.type === "FatalError"), "messages after a FatalError");

  // The server still serves everyone else.
  const after = new ConvexClient(server.url, { webSocketConstructor: WebSocket, logger: false });
  try {
    assert.equal(await timed(after.query(api.counters.get, { name }), 5_000, "a query after the flood"), writes);
  } finally {
    await after.close();
  }
}, {
  timeout: 60_000,
});
