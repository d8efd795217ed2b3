// ctx.runQuery and ctx.runMutation inside queries and mutations: the callee runs
// in the caller's transaction (its writes visible to the caller, its reads part
// of a live query's read set), its arguments and return value are validated, a
// failing callee's writes are undone while the caller may catch its error, and
// a query cannot call a mutation.
import assert from "node:assert/strict";
import { ConvexClient } from "convex/browser";
import WebSocket from "ws";
import { useServer } from "./harness.mjs";
import { api, rejects, uniqueName, waitFor } from "./support.mjs";

const srv = useServer((server) => server.deploy("nested"));
const test = srv.test;

test("a mutation's callees share its transaction; a failing callee's writes are undone", async (t, server) => {
  const client = server.client();
  const tag = uniqueName("tag");
  const result = await client.mutation(api.notes.addOneFailOne, { tag, first: "kept", second: "undone" });
  assert.deepStrictEqual(result, {
    seen: ["kept"],
    caught: { convexError: { reason: "refused", body: "undone" } },
    after: ["kept"],
  });
  assert.deepStrictEqual(await client.query(api.notes.listViaRunQuery, { tag }), ["kept"]);
});

test("a live query that reads through runQuery follows writes", async (t, server) => {
  const live = new ConvexClient(server.url, { webSocketConstructor: WebSocket, logger: false, unsavedChangesWarning: false });
  t.after(() => live.close());
  const tag = uniqueName("live");
  const seen = [];
  live.onUpdate(api.notes.listViaRunQuery, { tag }, (v) => seen.push(v));
  await waitFor(() => seen.length === 1, 15_000, "the first result");
  await server.client().mutation(api.notes.addOneFailOne, { tag, first: "a", second: "b" });
  await waitFor(() => seen.at(-1)?.length === 1, 15_000, "the update");
  assert.deepStrictEqual(seen, [[], ["a"]]);
});

test("a query cannot call a mutation", async (t, server) => {
  await rejects(
    server.client().query(api.notes.mutateFromQuery, {}),
    "Trying to execute notes:add as query, but it is defined as mutation.",
  );
});

test("a callee's arguments are validated", async (t, server) => {
  await rejects(server.client().mutation(api.notes.badArgs, {}), "ArgumentValidationError", "`body`");
});

test("nesting is bounded", async (t, server) => {
  const client = server.client();
  assert.equal(await client.query(api.notes.recurse, { depth: 10 }), 10);
  await rejects(client.query(api.notes.recurse, { depth: 40 }), "nested more than 16 levels deep");
});
