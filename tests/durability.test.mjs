// Durability across restarts: a graceful stop keeps everything, and after a
// kill -9 in the middle of a stream of writes every acknowledged transaction
// is present while no transaction is half-applied (each writes two events
// with the same seq, so every seq has exactly 0 or 2 documents).
import assert from "node:assert/strict";
import { useServer } from "./harness.mjs";
import { allPages, api, range, waitFor } from "./support.mjs";

const srv = useServer((server) => server.deploy("app"));
const test = srv.test;

async function eventsBySeq(client) {
  const pages = await allPages((cursor) =>
    client.query(api.durability.page, { paginationOpts: { numItems: 500, cursor } }),
  );
  const bySeq = new Map();
  for (const event of pages.flatMap((p) => p.page)) {
    if (!bySeq.has(event.seq)) bySeq.set(event.seq, []);
    bySeq.get(event.seq).push(event);
  }
  return bySeq;
}

function assertPair(seq, events) {
  assert.equal(events.length, 2, `seq ${seq} has ${events.length} documents`);
  assert.deepStrictEqual(events.map((e) => e.part).sort(), [0, 1], `seq ${seq}`);
  assert.equal(events[0].stream, events[1].stream);
}

test("a graceful stop and restart keeps data, deployment and admin key", async (t, server) => {
  const client = server.client();
  for (const seq of [-3, -2, -1]) {
    await client.mutation(api.durability.writePair, { seq, stream: "graceful" });
  }
  const key = server.adminKey;
  await server.stop();
  await server.restart();
  assert.equal(server.adminKey, key);
  const bySeq = await eventsBySeq(server.client());
  for (const seq of [-3, -2, -1]) assertPair(seq, bySeq.get(seq) ?? []);
});

test("kill -9 mid-stream loses no acknowledged write and tears none", async (t, server) => {
  const STREAMS = 4;
  const attempted = new Set();
  const acknowledged = new Set();
  const unexpected = [];
  let killed = false;

  const writers = range(STREAMS).map(async (w) => {
    const client = server.client();
    for (let i = 0; !killed; i++) {
      const seq = w * 1_000_000 + i;
      attempted.add(seq);
      try {
        await client.mutation(api.durability.writePair, { seq, stream: `w${w}` });
        acknowledged.add(seq);
      } catch (err) {
        if (!killed) unexpected.push(err);
        return;
      }
    }
  });

  await waitFor(
    () => acknowledged.size >= 300 || unexpected.length > 0,
    60_000,
    "300 acknowledged writes",
  );
  killed = true;
  await server.kill();
  await Promise.all(writers);
  assert.deepStrictEqual(unexpected, [], "writes failed before the kill");

  await server.restart();
  const client = server.client();
  const bySeq = await eventsBySeq(client);
  for (const seq of acknowledged) assertPair(seq, bySeq.get(seq) ?? []);
  for (const [seq, events] of bySeq) {
    if (seq < 0) continue; // from the graceful-stop test
    assert.ok(attempted.has(seq), `seq ${seq} was never written`);
    assertPair(seq, events);
  }

  // The restarted server accepts writes again.
  await client.mutation(api.durability.writePair, { seq: 99_000_000, stream: "after" });
  assertPair(99_000_000, (await eventsBySeq(client)).get(99_000_000) ?? []);
});
