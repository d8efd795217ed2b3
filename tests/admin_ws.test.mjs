// The admin key over the sync WebSocket, as convex-js sends it with
// `setAdminAuth(key)`: `Authenticate {tokenType: "Admin", value: key}`. An
// admin session reaches internal queries (subscribed), mutations and actions,
// exactly as the key does over HTTP; its existing subscriptions re-run under the
// new identity. A wrong key gets Convex's answer: an `AuthError` with
// `authUpdateAttempted: true`, then the server closes the connection (convex-js
// drops the credentials and reconnects without them). Acting as a user
// (`impersonating`, as convex-js sends it, or `key:<base64 identity>`) runs
// the session's queries as that user. Sessions without the key still cannot
// see internal functions.
import assert from "node:assert/strict";
import { once } from "node:events";
import WebSocket from "ws";
import { useServer } from "./harness.mjs";
import { connect } from "./sockets.mjs";
import { api, rejects, uniqueName, waitFor } from "./support.mjs";

const WAIT_MS = 15_000;
const CLIENT_VERSION = "1.48.0";
const NOT_FOUND = /Could not find public function for 'clients:secret/;

const srv = useServer(async (server) => {
  await server.deploy("live", { overlays: ["clients"] });
});
const test = srv.test;

const until = (predicate, what) => waitFor(predicate, WAIT_MS, what);

/** onUpdate's values and errors, in order. */
function watch(client, query, args) {
  const events = [];
  client.onUpdate(
    query,
    args,
    (value) => events.push({ value }),
    (error) => events.push({ error: error.message }),
  );
  return events;
}

/** Opens a raw sync socket, sends `messages`, and returns the first non-Ping reply. */
async function rawSession(t, server, messages) {
  const socket = new WebSocket(`${server.url.replace("http", "ws")}/api/${CLIENT_VERSION}/sync`);
  t.after(() => socket.terminate());
  const closed = once(socket, "close");
  await once(socket, "open");
  const reply = new Promise((resolve) => {
    socket.on("message", (data) => {
      const message = JSON.parse(data);
      if (message.type !== "Ping") resolve(message);
    });
  });
  const connectMessage = { type: "Connect", sessionId: uniqueName("raw"), connectionCount: 0, lastCloseReason: null, clientTs: 0 };
  for (const m of [connectMessage, ...messages]) socket.send(JSON.stringify(m));
  return { reply: await reply, closed };
}

test("an admin session subscribes to internal queries and runs internal mutations and actions", async (t, server) => {
  const channel = uniqueName("admin");
  const { client } = connect(t, server);
  client.client.setAdminAuth(server.adminKey);
  const list = watch(client, api.clients.secretList, { channel });
  await until(() => list.length === 1, "the internal query's first result");
  assert.deepEqual(list, [{ value: [] }]);

  assert.equal(await client.mutation(api.clients.secretSend, { channel, body: "s1" }), 1);
  await until(() => list.length === 2, "the internal query to see the write");
  assert.deepEqual(list, [{ value: [] }, { value: ["s1"] }]);
  assert.equal(await client.action(api.clients.secretEcho, { text: "hi" }), "internal:hi");
  assert.deepEqual(await client.query(api.clients.secretList, { channel }), ["s1"]);
});

test("a session without the admin key cannot reach internal functions", async (t, server) => {
  const channel = uniqueName("plain");
  const { client } = connect(t, server);
  await rejects(client.query(api.clients.secretList, { channel }), NOT_FOUND);
  await rejects(client.mutation(api.clients.secretSend, { channel, body: "x" }), NOT_FOUND);
  await rejects(client.action(api.clients.secretEcho, { text: "x" }), NOT_FOUND);
  // Nothing was written by the refused mutation.
  const { client: admin } = connect(t, server);
  admin.client.setAdminAuth(server.adminKey);
  assert.deepEqual(await admin.query(api.clients.secretList, { channel }), []);
});

test("subscriptions re-run when the session becomes admin and again when it stops", async (t, server) => {
  const channel = uniqueName("switch");
  const { client, net } = connect(t, server);
  const list = watch(client, api.clients.secretList, { channel });
  await until(() => list.length === 1, "the refused first result");
  assert.match(list[0].error, NOT_FOUND);

  client.client.setAdminAuth(server.adminKey);
  await until(() => list.length === 2, "the result as the admin");
  assert.deepEqual(list[1], { value: [] });

  client.client.clearAuth();
  await until(() => list.length === 3, "the result after clearAuth");
  assert.match(list[2].error, NOT_FOUND);

  // The identity version went 0 -> 1 -> 2 over Transitions on one connection.
  assert.equal(net.sockets.length, 1);
  const identities = net.sockets[0].received
    .filter((m) => m.type === "Transition")
    .map((m) => m.endVersion.identity);
  assert.deepEqual([...new Set(identities)], [0, 1, 2]);
});

test("a wrong admin key gets an AuthError and the connection is closed", async (t, server) => {
  const { client, net } = connect(t, server);
  client.client.setAdminAuth(`${server.adminKey}0`);
  await until(() => net.sockets.length > 0, "the first socket");
  const [first] = net.sockets;
  await first.closed;
  assert.deepEqual(first.received.filter((m) => m.type !== "Ping").at(-1), {
    type: "AuthError",
    error: "The admin key is not valid for this deployment.",
    baseVersion: 0,
    authUpdateAttempted: true,
  });
  // convex-js drops the refused key and reconnects as a plain client.
  await rejects(client.query(api.clients.secretList, { channel: uniqueName("wrong") }), NOT_FOUND);
  assert.ok(net.sockets.length >= 2);
});

test("an admin acting as a user runs the session's queries as that user", async (t, server) => {
  const identity = { subject: "user-1", issuer: "https://issuer", name: "Presley" };
  const { client } = connect(t, server);
  const whoami = watch(client, api.clients.whoami, {});
  await until(() => whoami.length === 1, "the anonymous answer");
  assert.deepEqual(whoami, [{ value: null }]);
  // convex-js sends the identity as `impersonating`; the query re-runs for it,
  // completed with Convex's tokenIdentifier.
  client.client.setAdminAuth(server.adminKey, identity);
  await until(() => whoami.length === 2, "the answer for the user");
  assert.deepEqual(whoami[1], { value: { ...identity, tokenIdentifier: "https://issuer|user-1" } });
  // The key-then-identity form works too; an identity that is not JSON is refused.
  const encoded = Buffer.from(JSON.stringify(identity)).toString("base64");
  const { reply } = await rawSession(t, server, [
    { type: "Authenticate", tokenType: "Admin", baseVersion: 0, value: `${server.adminKey}:${encoded}` },
  ]);
  assert.equal(reply.type, "Transition", JSON.stringify(reply));
  const refused = await rawSession(t, server, [
    { type: "Authenticate", tokenType: "Admin", baseVersion: 0, value: `${server.adminKey}:not-base64-json` },
  ]);
  assert.equal(refused.reply.type, "AuthError", JSON.stringify(refused.reply));
  await refused.closed;
});

