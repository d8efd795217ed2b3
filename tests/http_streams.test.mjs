// Streamed HTTP actions (fixture tests/fixtures/http, streams.ts): a
// ReadableStream response goes out as it is produced (server-sent events that
// the client reads one by one while the action still runs), with
// back-pressure (a client that stops reading stops the producer, so the
// server's memory stays flat), cut off when the producer fails midway; and a
// request body read as a stream. Requests use Node's fetch.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { useServer, sleep } from "./harness.mjs";
import { api, uniqueName } from "./support.mjs";

const srv = useServer((server) => server.deploy("http"));
const test = srv.test;

const MiB = 1 << 20;

/** Reads server-sent events from a fetch body, one at a time. */
function eventReader(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  return async () => {
    for (;;) {
      const end = buffered.indexOf("\n\n");
      if (end >= 0) {
        const event = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        return event;
      }
      const { value, done } = await reader.read();
      if (done) return null;
      buffered += value;
    }
  };
}

test("server-sent events reach the client one by one while the action runs", async (t, server) => {
  const source = uniqueName("sse");
  const client = server.client();
  const res = await fetch(`${server.siteUrl}/sse?source=${source}&events=3`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/event-stream");
  assert.equal(res.headers.get("cache-control"), "no-cache");
  const next = eventReader(res.body);
  for (let i = 0; i < 3; i++) {
    // The action writes event i only after the client recorded event i - 1:
    // had the server held the response back until the action ended, this
    // would wait forever (and the test time out).
    assert.equal(await next(), `event: tick\ndata: ${i}`);
    await client.mutation(api.messages.send, { source, text: `read ${i}` });
  }
  assert.equal(await next(), null, "the stream ends when the action closes it");
});

/** The server's resident memory in bytes. */
const rss = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) * 1024;

test("a client that stops reading holds the producer back: memory stays flat", async (t, server) => {
  const mib = 128;
  const res = await fetch(`${server.siteUrl}/big?mib=${mib}`);
  assert.equal(res.status, 200);
  const reader = res.body.getReader();
  let received = 0;
  let chunk = 0;
  const check = (bytes) => {
    for (let at = 0; at < bytes.length; at++, received++) {
      const expected = Math.floor(received / MiB) % 256;
      if (bytes[at] !== expected) assert.fail(`byte ${received} is ${bytes[at]}, expected ${expected}`);
    }
  };
  while (received < 8 * MiB) {
    const { value, done } = await reader.read();
    assert.ok(!done, "the stream ended early");
    check(value);
    chunk++;
  }
  // Stop reading. Without back-pressure the action would go on producing
  // (about 120 MiB more) into the server's memory: even a debug build
  // produces well over 10 MiB a second.
  const before = rss(server.child.pid);
  let peak = before;
  for (let i = 0; i < 40; i++) {
    await sleep(100);
    peak = Math.max(peak, rss(server.child.pid));
  }
  assert.ok(peak - before < 24 * MiB, `the server grew by ${((peak - before) / MiB).toFixed(1)} MiB while the client paused`);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    check(value);
  }
  assert.equal(received, mib * MiB);
  t.diagnostic(`${chunk} reads before the pause; RSS ${(before / MiB).toFixed(1)} MiB, peak during the pause ${(peak / MiB).toFixed(1)} MiB`);
});

test("a stream that fails midway cuts the response off after what it sent", async (t, server) => {
  const res = await fetch(`${server.siteUrl}/stream-fail`);
  assert.equal(res.status, 200, "the head went out before the failure");
  let text = "";
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  const failure = await (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return null;
        text += value;
      }
    } catch (e) {
      return e;
    }
  })();
  assert.equal(text, "first chunk\nsecond chunk\n");
  assert.ok(failure instanceof Error, "the body must end in an error, not a clean end");
  // The action really ran up to its failure, and the server keeps serving.
  assert.deepEqual(await server.client().query(api.messages.bySource, { source: "failing-stream" }), ["about to fail"]);
  assert.equal((await fetch(`${server.siteUrl}/hello`)).status, 200);
});

test("a request body reads as a stream; strings pipe through a TextEncoderStream", async (t, server) => {
  const body = new Uint8Array(3 * MiB + 17).map((_, i) => (i * 7) % 256);
  const res = await fetch(`${server.siteUrl}/count-body`, { method: "POST", body });
  assert.equal(res.status, 200);
  const sum = body.reduce((s, b) => (s + b) % 65536, 0);
  assert.deepEqual(await res.json(), { bytes: body.length, sum, bodyUsed: true });

  const encoded = await fetch(`${server.siteUrl}/encoded`);
  assert.equal(encoded.status, 207);
  assert.equal(encoded.headers.get("x-kind"), "encoded");
  assert.equal(await encoded.text(), "grüße from a stream");
});
