// End-to-end tests of the function API through ConvexHttpClient against the
// fixture app: index ranges, ordering, take, filters, first/unique/collect,
// pagination, patch/replace/delete, normalizeId, int64/bytes round trips, an
// action using fetch/runMutation/runQuery/env, and console output.
import assert from "node:assert/strict";
import http from "node:http";
import { useServer } from "./harness.mjs";
import {
  allPages,
  api,
  bytes,
  compareUtf8,
  range,
  uniqueName,
  withoutCreationTime,
} from "./support.mjs";

// Seeded items: n in [-10, 19], all distinct, inserted in a different order
// than n. Tests that insert more items use n >= 1000 and their own group.
const GROUPS = ["alpha", "beta", "gamma"];
const TAGS = ["red", "green", "blue", "amber"];
const model = []; // seeded items with their _id, in insertion order
const startedAt = Date.now();

const srv = useServer(async (server) => {
  await server.deploy("app");
  const client = server.client();
  const docs = range(30).map((i) => ({
    group: GROUPS[i % 3],
    n: ((i * 7) % 30) - 10,
    tag: TAGS[i % 4],
    ...(i % 5 === 0 ? { note: `note ${i}` } : {}),
  }));
  // The first ten one by one, the rest in one transaction.
  for (const doc of docs.slice(0, 10)) {
    model.push({ _id: await client.mutation(api.items.insert, doc), ...doc });
  }
  const ids = await client.mutation(api.items.insertMany, {
    items: docs.slice(10),
  });
  docs.slice(10).forEach((doc, i) => model.push({ _id: ids[i], ...doc }));
});
const test = srv.test;

const byN = (a, b) => a.n - b.n;
const strip = (docs) => docs.map(withoutCreationTime);
const ids = (docs) => docs.map((doc) => doc._id);

test("index range with eq and gt/lt in both orders", async (t, server) => {
  const client = server.client();
  const args = { group: "beta", gt: -5, lt: 12 };
  const expected = model
    .filter((d) => d.group === "beta" && d.n > -5 && d.n < 12)
    .sort(byN);
  assert.ok(expected.length >= 3);
  const asc = await client.query(api.items.byGroupRange, { ...args, order: "asc" });
  assert.deepStrictEqual(strip(asc), expected);
  const desc = await client.query(api.items.byGroupRange, { ...args, order: "desc" });
  assert.deepStrictEqual(strip(desc), expected.slice().reverse());
  for (const doc of asc) {
    assert.equal(typeof doc._creationTime, "number");
    assert.ok(doc._creationTime > startedAt - 60_000);
    assert.ok(doc._creationTime < Date.now() + 60_000);
  }
  const empty = await client.query(api.items.byGroupRange, {
    group: "beta",
    gt: 5,
    lt: 5,
    order: "asc",
  });
  assert.deepStrictEqual(empty, []);
});

test("single-field index range with gte/lte, desc and take", async (t, server) => {
  const client = server.client();
  const inRange = model.filter((d) => d.n >= -3 && d.n <= 15).sort(byN);
  const top5 = await client.query(api.items.byNRange, {
    gte: -3,
    lte: 15,
    order: "desc",
    take: 5,
  });
  assert.deepStrictEqual(strip(top5), inRange.slice().reverse().slice(0, 5));
  const all = await client.query(api.items.byNRange, {
    gte: -3,
    lte: 15,
    order: "asc",
    take: 100,
  });
  assert.deepStrictEqual(strip(all), inRange);
  const none = await client.query(api.items.byNRange, {
    gte: -100,
    lte: 100,
    order: "asc",
    take: 0,
  });
  assert.deepStrictEqual(none, []);
});

test("filter with and/or/not and comparisons keeps creation order", async (t, server) => {
  const client = server.client();
  const args = {
    minN: -8,
    maxN: 15,
    tags: ["green", "amber"],
    excludeGroup: "gamma",
  };
  const expected = model.filter(
    (d) =>
      d.n >= args.minN &&
      d.n < args.maxN &&
      args.tags.includes(d.tag) &&
      d.group !== args.excludeGroup,
  );
  assert.ok(expected.length >= 3);
  const result = await client.query(api.items.filtered, args);
  assert.deepStrictEqual(strip(result), expected);
});

test("filter arithmetic (mod, add, mul) and neq over an upper-bounded range", async (t, server) => {
  const client = server.client();
  const args = { below: 100, divisor: 3, remainder: 1, notTag: "red", tripleAbove: -6 };
  const expected = model
    .filter(
      (d) =>
        d.n < args.below &&
        d.n % args.divisor === args.remainder &&
        d.tag !== args.notTag &&
        d.n + 2 * d.n > args.tripleAbove,
    )
    .sort((a, b) => b.n - a.n);
  assert.ok(expected.length >= 2);
  const result = await client.query(api.items.arithmetic, args);
  assert.deepStrictEqual(strip(result), expected);
});

test("filter on a missing field", async (t, server) => {
  const client = server.client();
  const expected = model
    .filter((d) => d.group === "alpha" && !("note" in d))
    .sort(byN);
  assert.ok(expected.length > 0 && expected.length < 10);
  const result = await client.query(api.items.withoutNote, { group: "alpha" });
  assert.deepStrictEqual(strip(result), expected);
});

test("first() and unique()", async (t, server) => {
  const client = server.client();
  const gamma = model.filter((d) => d.group === "gamma").sort(byN);
  const first = (order, group = "gamma") =>
    client.query(api.items.firstInGroup, { group, order });
  assert.deepStrictEqual(withoutCreationTime(await first("asc")), gamma[0]);
  assert.deepStrictEqual(withoutCreationTime(await first("desc")), gamma.at(-1));
  assert.equal(await first("asc", "no-such-group"), null);

  const target = gamma[4];
  const hit = await client.query(api.items.uniqueAt, { group: "gamma", n: target.n });
  assert.deepStrictEqual(withoutCreationTime(hit), target);
  const miss = await client.query(api.items.uniqueAt, { group: "gamma", n: 0.5 });
  assert.equal(miss, null);
  await assert.rejects(
    client.query(api.items.uniqueInGroup, { group: "gamma" }),
    /more than one/,
  );
});

test("full table scan collects in creation order, both directions", async (t, server) => {
  const client = server.client();
  const expected = model.filter((d) => d.group === "alpha");
  const asc = await client.query(api.items.scanGroup, { group: "alpha", order: "asc" });
  assert.deepStrictEqual(strip(asc), expected);
  for (let i = 1; i < asc.length; i++) {
    assert.ok(asc[i]._creationTime > asc[i - 1]._creationTime);
  }
  const desc = await client.query(api.items.scanGroup, { group: "alpha", order: "desc" });
  assert.deepStrictEqual(strip(desc), expected.slice().reverse());
});

test("paginate returns every document exactly once, in index order", async (t, server) => {
  const client = server.client();
  const expected = model.filter((d) => d.group === "beta").sort(byN);
  const pages = await allPages((cursor) =>
    client.query(api.items.page, {
      group: "beta",
      paginationOpts: { numItems: 3, cursor },
    }),
  );
  assert.deepStrictEqual(strip(pages.flatMap((p) => p.page)), expected);
  for (const [i, p] of pages.entries()) {
    assert.ok(p.page.length <= 3);
    if (i < pages.length - 1) assert.ok(p.page.length > 0);
  }
  assert.ok(pages.length >= 4 && pages.length <= 5);
  // A finished query's cursor stays valid and yields nothing more.
  const again = await client.query(api.items.page, {
    group: "beta",
    paginationOpts: { numItems: 3, cursor: pages.at(-1).continueCursor },
  });
  assert.deepStrictEqual(again.page, []);
  assert.equal(again.isDone, true);
});

test("paginate cursors stay valid across inserts and deletes", async (t, server) => {
  const client = server.client();
  const group = uniqueName("pages");
  const insert = (n) => client.mutation(api.items.insert, { group, n, tag: "p" });
  const idOf = {};
  for (const n of range(10).map((i) => 1000 + 10 * i)) idOf[n] = await insert(n);
  const page = (cursor) =>
    client.query(api.items.page, { group, paginationOpts: { numItems: 4, cursor } });

  const first = await page(null);
  assert.deepStrictEqual(first.page.map((d) => d.n), [1000, 1010, 1020, 1030]);
  assert.equal(first.isDone, false);
  await insert(1005); // behind the cursor: not seen again
  await insert(1055); // ahead of the cursor: must be seen
  await client.mutation(api.items.removeItem, { id: idOf[1060] }); // ahead: gone
  await client.mutation(api.items.removeItem, { id: idOf[1010] }); // already read

  const rest = await allPages(page, first.continueCursor);
  const seen = [...first.page, ...rest.flatMap((p) => p.page)].map((d) => d.n);
  assert.deepStrictEqual(
    seen,
    [1000, 1010, 1020, 1030, 1040, 1050, 1055, 1070, 1080, 1090],
  );
});

test("patch, replace and delete", async (t, server) => {
  const client = server.client();
  const group = uniqueName("mut");
  const original = { group, n: 1500, tag: "fresh", note: "keep me" };
  const id = await client.mutation(api.items.insert, original);
  const inserted = await client.query(api.items.get, { id });
  assert.deepStrictEqual(withoutCreationTime(inserted), { _id: id, ...original });

  await client.mutation(api.items.patchItem, { id, tag: "patched" });
  const patched = await client.query(api.items.get, { id });
  assert.deepStrictEqual(patched, { ...inserted, tag: "patched" });

  await client.mutation(api.items.patchItem, { id, clearNote: true });
  const cleared = await client.query(api.items.get, { id });
  assert.deepStrictEqual(cleared, {
    _id: id,
    _creationTime: inserted._creationTime,
    group,
    n: 1500,
    tag: "patched",
  });

  const replacement = { group, n: 1501, tag: "replaced" };
  await client.mutation(api.items.replaceItem, { id, doc: replacement });
  const replaced = await client.query(api.items.get, { id });
  assert.deepStrictEqual(replaced, {
    _id: id,
    _creationTime: inserted._creationTime,
    ...replacement,
  });

  await client.mutation(api.items.removeItem, { id });
  assert.equal(await client.query(api.items.get, { id }), null);
  assert.equal(await client.query(api.items.normalize, { table: "items", id }), id);
  await assert.rejects(client.mutation(api.items.removeItem, { id }));
  await assert.rejects(client.mutation(api.items.patchItem, { id, tag: "x" }));
});

test("db.normalizeId recognises IDs of its own table only", async (t, server) => {
  const client = server.client();
  const id = model[0]._id;
  const normalize = (table, value) =>
    client.query(api.items.normalize, { table, id: value });
  assert.equal(await normalize("items", id), id);
  assert.equal(await normalize("counters", id), null);
  assert.equal(await normalize("items", "not-an-id"), null);
  assert.equal(await normalize("items", ""), null);
});

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

test("int64 and bytes survive args, storage and results", async (t, server) => {
  const client = server.client();
  const doc = {
    label: uniqueName("values"),
    big: INT64_MIN,
    data: bytes(range(256)),
    nested: {
      bigs: [0n, INT64_MAX, -1n, 2n ** 53n + 1n],
      raw: [bytes([]), bytes([0, 255, 128])],
    },
  };
  const id = await client.mutation(api.values.store, doc);
  const stored = await client.query(api.values.get, { id });
  assert.deepStrictEqual(withoutCreationTime(stored), { _id: id, ...doc });
  assert.equal(typeof stored.big, "bigint");
  assert.ok(stored.data instanceof ArrayBuffer);

  const big = 2n ** 62n + 5n;
  const data = bytes([1, 2, 3, 250]);
  const echoed = await client.query(api.values.echo, { big, data });
  assert.deepStrictEqual(echoed, {
    bigPlusOne: big + 1n,
    reversed: bytes([250, 3, 2, 1]),
    bigType: "bigint",
    isArrayBuffer: true,
    byteLength: 4,
  });
});

test("int64 index ranges order negative and positive values", async (t, server) => {
  const client = server.client();
  const label = uniqueName("bigs");
  const bigs = [2n ** 40n, -1n, INT64_MAX, 0n, INT64_MIN, 1n, -5n];
  for (const big of bigs) {
    await client.mutation(api.values.store, { label, big, data: bytes([]) });
  }
  const query = (gt, lt, order) =>
    client
      .query(api.values.bigRange, { label, gt, lt, order })
      .then((docs) => docs.map((d) => d.big));
  assert.deepStrictEqual(await query(-5n, 2n ** 40n, "asc"), [-1n, 0n, 1n]);
  assert.deepStrictEqual(await query(-5n, 2n ** 40n, "desc"), [1n, 0n, -1n]);
  assert.deepStrictEqual(
    await query(INT64_MIN, INT64_MAX, "asc"),
    [-5n, -1n, 0n, 1n, 2n ** 40n],
  );
});

test("an action fetches, runs internal functions and reads env", async (t, server) => {
  const token = uniqueName("token");
  const hits = [];
  const remote = http.createServer((req, res) => {
    hits.push(req.url);
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ token, path: req.url }));
  });
  await new Promise((r) => remote.listen(0, "127.0.0.1", r));
  t.after(() => remote.close());
  const base = `http://127.0.0.1:${remote.address().port}`;
  await server.setEnv("FETCH_URL", base);

  const client = server.client();
  assert.equal(await client.action(api.remote.envValue, { name: "FETCH_URL" }), base);
  assert.equal(
    await client.action(api.remote.envValue, { name: "NEVER_SET_ANYWHERE" }),
    null,
  );
  const before = await client.query(api.remote.countRecords, {});
  const result = await client.action(api.remote.fetchAndRecord, { path: "/hello?x=1" });
  assert.equal(result.status, 200);
  assert.deepStrictEqual(JSON.parse(result.body), { token, path: "/hello?x=1" });
  assert.equal(result.stored, result.body);
  assert.equal(result.count, before + 1);
  assert.deepStrictEqual(hits, ["/hello?x=1"]);
  assert.equal(await client.query(api.remote.countRecords, {}), before + 1);
});

test("console output reaches the client as log lines", async (t, server) => {
  const captured = [];
  const record = (level) => (...args) => captured.push({ level, text: args.join(" ") });
  const client = server.client({
    logger: {
      log: record("log"),
      warn: record("warn"),
      error: record("error"),
      logVerbose: () => {},
    },
  });
  const message = uniqueName("chatter");
  assert.equal(await client.query(api.logs.chatter, { message }), message.length);
  const lines = captured.filter((c) => c.text.includes(message));
  assert.equal(lines.length, 2, JSON.stringify(captured));
  assert.equal(lines[0].level, "log");
  assert.match(lines[0].text, /\[LOG\].*said/);
  assert.match(lines[1].text, /\[WARN\].*warned/);
  assert.deepStrictEqual(
    captured.filter((c) => c.level === "error"),
    [],
    "the client could not parse a log line",
  );
});
