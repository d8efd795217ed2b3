// Limits of execution and errors of the system rather than of a function, on a
// server with one warm Node.js worker, at most nine Node.js actions at once and
// a 2 s action time limit: nested actions never wait for a busy worker or
// thread in either runtime (so they cannot deadlock), Node.js ones are refused
// past the cap; actions that overrun
// fail with Convex's messages in both runtimes, which keep serving; an error
// nothing catches in a Node.js action fails that call; and the OCC and overload
// errors of Convex's test syscalls reach clients as Convex reports them: over
// HTTP as 503 with their code, over the WebSocket by closing the connection so
// that the client re-sends the mutation until it succeeds.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startServer } from "./harness.mjs";
import { connect } from "./sockets.mjs";
import { api, escapeRegExp, rejects, SERVER_ERROR, uniqueName } from "./support.mjs";

const MAX_CONCURRENT = 9;
let server;

before(
  async () => {
    server = await startServer({
      args: ["--action-timeout", "2", "--node-warm-workers", "1", "--node-max-concurrent", String(MAX_CONCURRENT)],
    });
    await server.deploy("limits");
  },
  { timeout: 300_000 },
);
after(async () => {
  await server?.cleanup();
});

/** Prints the server's output when a test fails. */
const serverTest = (name, fn) =>
  test(name, { timeout: 120_000 }, async (t) => {
    const mark = server.log.length;
    try {
      await fn(t);
    } catch (err) {
      console.error(`\n[${name}] failed; ${server.tail(300, mark)}\n`);
      throw err;
    }
  });

/** The whole errorMessage starts with Convex's prefix and then `message`. */
const startsWith = (message) => new RegExp(`^${SERVER_ERROR}${escapeRegExp(message)}`);

serverTest("node actions calling node actions never wait for a busy worker", async () => {
  // Three clients, each running a chain of three nested Node.js actions, need
  // nine workers at once; only one is kept warm.
  const chains = await Promise.all(
    [1, 2, 3].map(() => server.client().action(api.nodeChain.chain, { depth: 3 })),
  );
  for (const pids of chains) {
    assert.equal(pids.length, 3);
    assert.equal(new Set(pids).size, 3, `every level runs in a worker of its own: ${pids}`);
  }
});

serverTest("actions in Convect's runtime calling actions never wait for a busy thread", async () => {
  // Six chains of five levels hold 30 action threads at once, more than the 16
  // kept warm; a call that waited for a busy thread would stall until the 2 s limit.
  const depths = await Promise.all(
    [1, 2, 3, 4, 5, 6].map(() => server.client().action(api.chain.chain, { depth: 5 })),
  );
  assert.deepStrictEqual(depths, [5, 5, 5, 5, 5, 5]);
});

serverTest("node actions past the cap are refused at once, not queued", async () => {
  // The tenth level finds nine workers busy with the levels that wait for it.
  await rejects(
    server.client().action(api.nodeChain.chain, { depth: MAX_CONCURRENT + 1 }),
    `TooManyConcurrentRequests: Too many concurrent Node.js actions: ${MAX_CONCURRENT} are running`,
  );
  const pids = await server.client().action(api.nodeChain.chain, { depth: MAX_CONCURRENT });
  assert.equal(pids.length, MAX_CONCURRENT);
});

serverTest("actions that overrun the time limit fail as on Convex, and both runtimes keep serving", async () => {
  const client = server.client();
  await rejects(
    client.action(api.nodeChain.neverSettles, {}),
    startsWith("Action `neverSettles` execution timed out (maximum duration 2s)"),
  );
  await rejects(client.action(api.spin.spin, {}), startsWith("Function execution timed out (maximum duration: 2s)"));
  assert.equal(typeof (await client.action(api.nodeChain.pid, {})), "number");
  assert.equal(await client.action(api.spin.ping, {}), "pong");
});

serverTest("an error thrown by a timer in a node action fails that call; the next runs", async () => {
  const client = server.client();
  const before = await client.action(api.nodeChain.pid, {});
  await rejects(
    client.action(api.nodeChain.throwsFromTimer, {}),
    startsWith("Uncaught uncaughtException: thrown by a timer"),
  );
  const after = await client.action(api.nodeChain.pid, {});
  assert.notEqual(after, before, "the worker the error ended was replaced");
});

serverTest("system errors reach the HTTP client as a 503 with Convex's code", async () => {
  const client = server.client();
  const flag = uniqueName("http");
  const occ = await rejects(client.mutation(api.system.occ, { flag }));
  assert.deepStrictEqual(JSON.parse(occ.message), {
    code: "OptimisticConcurrencyControlFailure",
    message:
      "Documents read from or written to some table changed while this mutation was being run " +
      "and on every subsequent retry. See https://docs.convex.dev/error#1",
  });
  // Caught or not, the system failed the call.
  const caught = await rejects(client.mutation(api.system.occCaught, { flag }));
  assert.equal(JSON.parse(caught.message).code, "OptimisticConcurrencyControlFailure");
  const busy = await rejects(client.mutation(api.system.overloaded, { flag }));
  assert.deepStrictEqual(JSON.parse(busy.message), { code: "Busy", message: "I'm a bit busy." });
  assert.equal(await client.query(api.system.attempts, {}), 0, "no failed mutation committed its write");
});

for (const [name, code] of [
  ["occ", "OptimisticConcurrencyControlFailure"],
  ["overloaded", "Busy"],
]) {
  serverTest(`a mutation failing with ${code} over the WebSocket is re-sent until it succeeds`, async (t) => {
    const { client, net } = connect(t, server);
    const flag = uniqueName(name);
    const result = client.mutation(api.system[name], { flag });
    // The server closes the connection with "try again later" and the code.
    const [closeCode, reason] = await net.sockets[0].closed;
    assert.equal(closeCode, 1013);
    assert.equal(reason.toString(), code);
    await server.client().mutation(api.system.flag, { name: flag });
    assert.equal(await result, "flagged");
    const sent = net.sockets.map((s) => s.sent.filter((m) => m.type === "Mutation").length);
    assert.ok(sent[0] === 1 && sent.slice(1).some((n) => n > 0), `re-sent on a new connection: ${sent}`);
  });
}
