// The admin key over the sync WebSocket, as convex-js sends it with
// `setAdminAuth(key)`: `Authenticate {tokenType: "Admin", value: key}`. An
// admin session reaches internal queries (subscribed), mutations and actions,
// exactly as the key does over HTTP; its existing subscriptions re-run under the
// new identity. A wrong key gets Convex's answer: an `AuthError` with
// `authUpdateAttempted: true`, then the server closes the connection (convex-js
// drops the credentials and reconnects without them). Acting as a user
// (`impersonating` / `key:<base64 identity>`) is refused until identities exist,
// rather than running the calls as the admin. Sessions without the key still
// cannot see internal functions.
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

test("acting as a user with the admin key is refused, not run as the admin", async (t, server) => {
  const identity = { tokenIdentifier: "https://issuer|user-1", subject: "user-1", issuer: "https://issuer" };
  const encoded = Buffer.from(JSON.stringify(identity)).toString("base64");
  const asUser = [
    { type: "Authenticate", tokenType: "Admin", baseVersion: 0, value: server.adminKey, impersonating: identity },
    { type: "Authenticate", tokenType: "Admin", baseVersion: 0, value: `${server.adminKey}:${encoded}` },
  ];
  for (const authenticate of asUser) {
    const { reply, closed } = await rawSession(t, server, [authenticate]);
    assert.equal(reply.type, "AuthError", JSON.stringify(reply));
    assert.match(reply.error, /cannot act as a user identity/);
    assert.equal(reply.authUpdateAttempted, true);
    await closed;
  }
  // The same key alone is accepted: the identity version moves to 1.
  const { reply } = await rawSession(t, server, [
    { type: "Authenticate", tokenType: "Admin", baseVersion: 0, value: server.adminKey },
  ]);
  assert.equal(reply.type, "Transition", JSON.stringify(reply));
  assert.deepEqual([reply.startVersion.identity, reply.endVersion.identity], [0, 1]);
});
