// Failure paths through ConvexHttpClient (and raw fetch for malformed
// requests): unknown and internal functions, argument/return validation,
// schema violations, oversized documents, thrown errors, endless loops and
// writes followed by a throw. Every case also proves that nothing changed.
// Then the exact text of errors, as Convex words them, through both official
// clients (HTTP and the sync WebSocket), and the bytes of HTTP responses.
import assert from "node:assert/strict";
import { useServer } from "./harness.mjs";
import {
  api,
  ConvexError,
  escapeRegExp,
  rejects,
  rejectsOnBothClients,
  rejectsWithData,
  SERVER_ERROR,
  uniqueName,
} from "./support.mjs";

let itemId; // an existing item that failing mutations try to modify
let valueId; // an ID of another table

const srv = useServer(async (server) => {
  await server.deploy("app");
  const client = server.client();
  itemId = await client.mutation(api.items.insert, { group: "base", n: 1, tag: "t" });
  valueId = await client.mutation(api.values.store, {
    label: "base",
    big: 1n,
    data: new ArrayBuffer(0),
  });
});
const test = srv.test;

/** Runs `fn` and asserts that the database looks exactly the same after. */
async function unchanged(client, fn) {
  const before = await client.query(api.inspect.snapshot, {});
  await fn();
  assert.deepStrictEqual(await client.query(api.inspect.snapshot, {}), before);
}

test("unknown functions are reported by name", async (t, server) => {
  const client = server.client();
  await unchanged(client, async () => {
    await rejects(client.query(api.items.noSuchQuery, {}), "items:noSuchQuery");
    await rejects(client.mutation(api.noSuchModule.fn, {}), "noSuchModule:fn");
    await rejects(client.action(api.items.noSuchAction, {}), "items:noSuchAction");
  });
});

test("internal functions and wrong function kinds are refused to clients", async (t, server) => {
  const client = server.client();
  const record = { url: "http://x", status: 1, body: "should not exist" };
  await unchanged(client, async () => {
    await rejects(client.mutation(api.remote.record, record), "remote:record");
    await rejects(client.query(api.remote.getRecord, { id: itemId }), "remote:getRecord");
    // A mutation must not run (and write) through the query endpoint.
    // Convex names the function by its canonical path in this message.
    await rejects(
      client.query(api.items.insert, { group: "kind", n: 2, tag: "t" }),
      "Trying to execute items.js:insert as Query, but it is defined as Mutation.",
    );
    await rejects(client.action(api.items.insert, { group: "kind", n: 2, tag: "t" }));
  });
});

test("arguments failing their validators are rejected", async (t, server) => {
  const client = server.client();
  await unchanged(client, async () => {
    await rejects(
      client.mutation(api.values.store, { label: "x", big: 1.5, data: new ArrayBuffer(1) }),
      "big",
    );
    await rejects(
      client.mutation(api.items.insert, { group: "x", n: 1, tag: "t", surplusArg: 1 }),
      "surplusArg",
    );
    await rejects(client.mutation(api.items.insert, { group: "x", n: 1 }), "tag");
    await rejects(client.query(api.items.get, { id: valueId }), "items");
  });
});

test("return values failing their validators are errors, and roll back", async (t, server) => {
  const client = server.client();
  await unchanged(client, async () => {
    await rejects(client.query(api.errors.badReturn, {}), /return/i);
    await rejects(
      client.mutation(api.errors.badReturnAfterWrite, { group: uniqueName("ret") }),
      /return/i,
    );
  });
});

test("writes violating the schema are refused as a whole", async (t, server) => {
  const client = server.client();
  await unchanged(client, async () => {
    for (const kind of ["wrongType", "extraField", "missingField"]) {
      const group = uniqueName(kind);
      const err = await rejects(
        client.mutation(api.errors.insertInvalid, { group, kind }),
        "items",
      );
      if (kind === "extraField") assert.match(err.message, /surplusField/);
    }
    for (const how of ["patch", "replace"]) {
      await rejects(client.mutation(api.errors.updateInvalid, { id: itemId, how }), "items");
    }
  });
});

test("documents over 1 MiB are refused", async (t, server) => {
  const client = server.client();
  // Control: a large document under the limit is fine.
  const id = await client.mutation(api.errors.insertBlob, { label: "half", size: 512 * 1024 });
  await client.mutation(api.errors.removeBlob, { id });
  await unchanged(client, async () => {
    await rejects(
      client.mutation(api.errors.insertBlob, { label: "huge", size: 1024 * 1024 + 4096 }),
      /1 ?MiB|too large|size/i,
    );
  });
});

test("malformed requests get 400", async (t, server) => {
  const client = server.client();
  const post = (endpoint, body) =>
    fetch(`${server.url}/api/${endpoint}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
  await unchanged(client, async () => {
    const broken = '{"path": "items:insert", "args": [{"group": "x", "n": 1,';
    for (const endpoint of ["query", "mutation", "action"]) {
      const res = await post(endpoint, broken);
      assert.equal(res.status, 400, `${endpoint}: ${await res.text()}`);
    }
    const noPath = await post("mutation", JSON.stringify({ args: [{}] }));
    assert.equal(noPath.status, 400, await noPath.text());
  });
});

test("thrown errors reach the client with message and ConvexError data", async (t, server) => {
  const client = server.client();
  await unchanged(client, async () => {
    const message = uniqueName("kaboom");
    const plain = await rejects(client.query(api.errors.throwPlain, { message }), message);
    assert.equal(plain instanceof ConvexError, false);
    await rejectsWithData(client.query(api.errors.throwConvexError, { code: "E_TEST" }), {
      code: "E_TEST",
      count: 3n,
      tags: ["a", "b"],
    });
  });
});

// The harness copies each fixture to `<work>/src/functions-N`, so frames name
// sources as Convex's do for that folder: `../functions-N/errors.ts`.
// Convex ends every frame line with a newline, so convex-js's WebSocket
// clients show a blank line before their `  Called by client`.
const AT_ERRORS_TS = String.raw`\n    at handler \(\.\./functions-\d+/errors\.ts:\d+:\d+\)\n`;

/** A raw HTTP API call; resolves to the status and the body's text. */
async function post(server, endpoint, path, args) {
  const res = await fetch(`${server.url}/api/${endpoint}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ path, args: [args], format: "convex_encoded_json" }),
  });
  return { status: res.status, text: await res.text() };
}

test("function errors travel as HTTP 200 with Convex's body", async (t, server) => {
  // Convex answers a function's failure with 200 (convex-js also accepts 560,
  // the PyPI client's http_client.ConvexHttpClient only 200); `logLines` and
  // `errorData` are left out when there are none.
  const message = uniqueName("raw");
  const plain = await post(server, "query", "errors:throwPlain", { message });
  assert.equal(plain.status, 200);
  const body = JSON.parse(plain.text);
  assert.deepStrictEqual(Object.keys(body), ["status", "errorMessage"]);
  assert.equal(body.status, "error");
  assert.match(body.errorMessage, new RegExp(`^${SERVER_ERROR}Uncaught Error: ${message}\n`));

  const coded = await post(server, "query", "errors:throwConvexError", { code: "RAW" });
  assert.equal(coded.status, 200);
  // int64 inside errorData uses the convex_encoded_json form.
  assert.deepStrictEqual(JSON.parse(coded.text).errorData, {
    code: "RAW",
    count: { $integer: Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]).toString("base64") },
    tags: ["a", "b"],
  });
});

test("results are exported from the value model: sorted keys, floats as 1.0", async (t, server) => {
  const big = { $integer: Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]).toString("base64") };
  // The function builds its object in another order, with a whole-number float.
  const echo = await post(server, "query", "values:echo", { big, data: { $bytes: "AQID" } });
  assert.equal(echo.status, 200);
  assert.equal(
    echo.text,
    '{"status":"success","value":{"bigPlusOne":{"$integer":"AgAAAAAAAAA="},"bigType":"bigint",' +
      '"byteLength":3.0,"isArrayBuffer":true,"reversed":{"$bytes":"AwIB"}}}',
  );
  // Log lines come after the value, only when there are some.
  const chatter = await post(server, "query", "logs:chatter", { message: "hi" });
  assert.equal(chatter.text, `{"status":"success","value":2.0,"logLines":["[LOG] 'said' 'hi'","[WARN] 'warned' 'hi'"]}`);
});

test("a thrown Error reads as on Convex, its frames mapped to the source", async (t, server) => {
  const message = uniqueName("boom");
  const pattern = `${SERVER_ERROR}Uncaught Error: ${message}${AT_ERRORS_TS}`;
  for (const error of await rejectsOnBothClients(t, server, "query", api.errors.throwPlain, { message }, pattern)) {
    assert.equal(error instanceof ConvexError, false);
  }
  const args = { group: uniqueName("ws"), patchId: itemId, kind: "plain" };
  await rejectsOnBothClients(t, server, "mutation", api.errors.writeThenThrow, args, `${SERVER_ERROR}Uncaught Error: failing after writes${AT_ERRORS_TS}`);
});

test("a ConvexError keeps its data and reads as on Convex", async (t, server) => {
  const text = escapeRegExp('{"code":"E_FMT","count":"3n","tags":["a","b"]}');
  const pattern = `${SERVER_ERROR}Uncaught ConvexError: ${text}${AT_ERRORS_TS}`;
  for (const error of await rejectsOnBothClients(t, server, "query", api.errors.throwConvexError, { code: "E_FMT" }, pattern)) {
    assert.ok(error instanceof ConvexError, error.stack);
    assert.deepStrictEqual(error.data, { code: "E_FMT", count: 3n, tags: ["a", "b"] });
  }
});

test("unknown functions and invalid arguments are server errors as on Convex", async (t, server) => {
  const missing = escapeRegExp(
    "Could not find public function for 'items:noSuchQuery'. Did you forget to run `npx convex dev`?",
  );
  await rejectsOnBothClients(t, server, "query", api.items.noSuchQuery, {}, `${SERVER_ERROR}${missing}`);
  const invalid = escapeRegExp("ArgumentValidationError: Object is missing the required field `tag`.");
  await rejectsOnBothClients(t, server, "mutation", api.items.insert, { group: "x", n: 1 }, `${SERVER_ERROR}${invalid}[^]*`);
});

test("an action's failing query shows the query's error once, then the action's awaiting frame", async (t, server) => {
  // As V8 prints it on Convex: after the callee's error and a blank line, the
  // caller's `at async` frame, which QuickJS gets from the syscall's call site.
  const message = uniqueName("inner");
  const caller = String.raw`\n    at async handler \(\.\./functions-\d+/errors\.ts:\d+:\d+\)\n`;
  const pattern = `${SERVER_ERROR}Uncaught Error: Uncaught Error: ${message}${AT_ERRORS_TS}${caller}`;
  await rejectsOnBothClients(t, server, "action", api.errors.throwThroughRunQuery, { message }, pattern);
});

test("a mutation that throws after writing leaves nothing behind", async (t, server) => {
  const client = server.client();
  await unchanged(client, async () => {
    const args = (kind) => ({ group: uniqueName(kind), patchId: itemId, kind });
    await rejects(client.mutation(api.errors.writeThenThrow, args("plain")), "failing after writes");
    await rejectsWithData(client.mutation(api.errors.writeThenThrow, args("convex")), {
      code: "ROLLED_BACK",
    });
  });
});

test("endless loops time out clearly and the server keeps serving", async (t, server) => {
  const client = server.client();
  await unchanged(client, async () => {
    const started = Date.now();
    await rejects(client.query(api.errors.spin, {}), /timed? ?out|time ?limit|timeout/i);
    assert.ok(Date.now() - started < 60_000, "the loop was not interrupted in time");
    await rejects(
      client.mutation(api.errors.spinAfterWrite, { group: uniqueName("spin") }),
      /timed? ?out|time ?limit|timeout/i,
    );
  });
  const doc = await client.query(api.items.get, { id: itemId });
  assert.equal(doc?._id, itemId);
});

test("source maps are stored with the modules: frames stay mapped after a restart", async (t, server) => {
  await server.restart();
  const message = uniqueName("restarted");
  const pattern = new RegExp(`^${SERVER_ERROR}Uncaught Error: ${message}${AT_ERRORS_TS}$`);
  await rejects(server.client().query(api.errors.throwPlain, { message }), pattern);
});
