// Tests for web_streams.js, run with `node --test`. The file is evaluated the way
// the prelude uses it (a script fragment defining `convectWebStreams`), so the
// classes under test are ours, never Node's built-in streams.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

const src = readFileSync(new URL("../engine/src/runtime/web_streams.js", import.meta.url), "utf8");
const factory = new Function(`${src}\nreturn convectWebStreams;`)();
const {
  ReadableStream, ReadableStreamDefaultReader, ReadableStreamDefaultController, WritableStream,
  WritableStreamDefaultWriter, TransformStream, TransformStreamDefaultController, ByteLengthQueuingStrategy,
  CountQueuingStrategy, TextEncoderStream, TextDecoderStream,
} = factory();

const ticks = async (n = 20) => { for (let i = 0; i < n; i++) await Promise.resolve(); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const readAll = async (readable) => {
  const out = [];
  const reader = readable.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return out;
    out.push(value);
  }
};
const fromArray = (chunks) => new ReadableStream({
  start(c) { for (const x of chunks) c.enqueue(x); c.close(); },
});

test("these are our classes, not Node's", () => {
  assert.notEqual(ReadableStream, globalThis.ReadableStream);
  assert.notEqual(TransformStream, globalThis.TransformStream);
});

test("reader reads chunks in order, then done", async () => {
  const reader = fromArray(["a", "b", "c"]).getReader();
  assert.deepEqual(await reader.read(), { value: "a", done: false });
  assert.deepEqual(await reader.read(), { value: "b", done: false });
  assert.deepEqual(await reader.read(), { value: "c", done: false });
  assert.deepEqual(await reader.read(), { value: undefined, done: true });
  assert.deepEqual(await reader.read(), { value: undefined, done: true });
  await reader.closed;
});

test("pull is called only as reads create demand, never concurrently", async () => {
  let pulls = 0, concurrent = 0, maxConcurrent = 0;
  const stream = new ReadableStream({
    async pull(c) {
      pulls++;
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await sleep(1);
      concurrent--;
      c.enqueue(pulls);
    },
  }, { highWaterMark: 0 });
  await sleep(5);
  assert.equal(pulls, 0, "no demand, no pull");
  const reader = stream.getReader();
  const reads = [reader.read(), reader.read(), reader.read()];
  assert.deepEqual((await Promise.all(reads)).map((r) => r.value), [1, 2, 3]);
  await sleep(5);
  assert.equal(pulls, 3);
  assert.equal(maxConcurrent, 1);
});

test("default high-water mark of 1 fills one chunk ahead; size() counts", async () => {
  let pulls = 0;
  const stream = new ReadableStream({ pull(c) { pulls++; c.enqueue(pulls); } });
  await ticks();
  assert.equal(pulls, 1, "fills the queue to the high-water mark");
  const reader = stream.getReader();
  assert.equal((await reader.read()).value, 1);
  await ticks();
  assert.equal(pulls, 2);

  let controller;
  const sized = new ReadableStream({ start(c) { controller = c; } }, { highWaterMark: 10, size: (s) => s.length });
  assert.equal(controller.desiredSize, 10);
  controller.enqueue("abcd");
  assert.equal(controller.desiredSize, 6);
  controller.enqueue("abcdefgh");
  assert.equal(controller.desiredSize, -2);
  await sized.cancel();
  assert.equal(controller.desiredSize, 0);

  const counted = new ReadableStream({ start(c) { controller = c; } }, new CountQueuingStrategy({ highWaterMark: 3 }));
  assert.equal(controller.desiredSize, 3);
  const bytes = new ReadableStream({ start(c) { controller = c; } }, new ByteLengthQueuingStrategy({ highWaterMark: 8 }));
  controller.enqueue(new Uint8Array(5));
  assert.equal(controller.desiredSize, 3);
  await Promise.all([counted.cancel(), bytes.cancel()]);
});

test("TransformStream identity: writes do not all complete before reads", async () => {
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  const log = [];
  const writes = [1, 2, 3].map((n) => writer.write(n).then(() => log.push(`w${n}`)));
  const closed = writer.close().then(() => log.push("closed"));
  await sleep(5);
  assert.deepEqual(log, [], "nothing is written until the readable side asks");
  const reader = readable.getReader();
  for (const n of [1, 2, 3]) {
    const { value } = await reader.read();
    log.push(`r${value}`);
    await sleep(2);
    assert.ok(!log.includes(`w${n + 1}`), `write ${n + 1} completed before read ${n + 1}`);
  }
  assert.deepEqual(await reader.read(), { value: undefined, done: true });
  await Promise.all([...writes, closed]);
  assert.deepEqual(log, ["r1", "w1", "r2", "w2", "r3", "w3", "closed"]);
});

test("writer.ready and desiredSize reflect back-pressure", async () => {
  const written = [];
  let release;
  const stream = new WritableStream({
    write(chunk) { written.push(chunk); return new Promise((r) => { release = r; }); },
  }, { highWaterMark: 2 });
  const writer = stream.getWriter();
  await writer.ready;
  assert.equal(writer.desiredSize, 2);
  const w1 = writer.write("a");
  const w2 = writer.write("b");
  assert.equal(writer.desiredSize, 0);
  let ready = false;
  writer.ready.then(() => { ready = true; });
  await ticks();
  assert.equal(ready, false);
  assert.deepEqual(written, ["a"], "one sink write at a time");
  release();
  await w1;
  await ticks();
  assert.equal(ready, true);
  assert.deepEqual(written, ["a", "b"]);
  release();
  await w2;
  await writer.close();
  await writer.closed;
});

test("TextEncoderStream -> TextDecoderStream round trip with split multi-byte characters", async () => {
  const text = "héllo 🌍 wörld — ✓";
  const encoded = new TextEncoder().encode(text);
  // Split the bytes one by one so every multi-byte character straddles chunks.
  const byteChunks = [...encoded].map((b) => new Uint8Array([b]));
  const decoded = await readAll(fromArray(byteChunks).pipeThrough(new TextDecoderStream()));
  assert.equal(decoded.join(""), text);
  assert.ok(decoded.every((s) => !s.includes("\uFFFD")));

  // Strings split mid surrogate pair still encode correctly.
  const pieces = ["h", "é", "\uD83C", "\uDF0D", "!"];
  const roundTrip = await readAll(
    fromArray(pieces).pipeThrough(new TextEncoderStream()).pipeThrough(new TextDecoderStream()),
  );
  assert.equal(roundTrip.join(""), "hé🌍!");

  const enc = new TextEncoderStream(), dec = new TextDecoderStream("utf-8", { fatal: true });
  assert.equal(enc.encoding, "utf-8");
  assert.equal(dec.encoding, "utf-8");
  assert.equal(dec.fatal, true);
  assert.equal(dec.ignoreBOM, false);
  assert.ok(enc.readable instanceof ReadableStream && enc.writable instanceof WritableStream);

  const withBom = await readAll(fromArray([new Uint8Array([0xef]), new Uint8Array([0xbb, 0xbf, 0x41])]).pipeThrough(new TextDecoderStream()));
  assert.equal(withBom.join(""), "A");
  const truncated = await readAll(fromArray([new Uint8Array([0x41, 0xe2, 0x82])]).pipeThrough(new TextDecoderStream()));
  assert.equal(truncated.join(""), "A\uFFFD");
  const arrayBuffer = await readAll(fromArray([new Uint8Array([0x68, 0x69]).buffer]).pipeThrough(new TextDecoderStream()));
  assert.equal(arrayBuffer.join(""), "hi");
});

test("pipeTo writes everything in order and closes the destination", async () => {
  const written = [];
  let closed = false;
  const dest = new WritableStream({
    async write(chunk) { await sleep(1); written.push(chunk); },
    close() { closed = true; },
  });
  const source = fromArray([1, 2, 3, 4]);
  const piping = source.pipeTo(dest);
  assert.equal(source.locked, true);
  assert.equal(dest.locked, true);
  await piping;
  assert.deepEqual(written, [1, 2, 3, 4]);
  assert.equal(closed, true);
  assert.equal(source.locked, false);
  assert.equal(dest.locked, false);
});

test("pipeTo propagates errors and honours prevent* options", async () => {
  const boom = new Error("boom");
  let abortReason;
  const errSource = new ReadableStream({ start(c) { c.enqueue(1); c.error(boom); } });
  await assert.rejects(errSource.pipeTo(new WritableStream({ abort(r) { abortReason = r; } })), boom);
  assert.equal(abortReason, boom);

  let cancelReason;
  const source = new ReadableStream({ pull(c) { c.enqueue("x"); }, cancel(r) { cancelReason = r; } });
  await assert.rejects(source.pipeTo(new WritableStream({ write() { throw boom; } })), boom);
  assert.equal(cancelReason, boom);

  let closed = false;
  const dest = new WritableStream({ close() { closed = true; } });
  await fromArray([1]).pipeTo(dest, { preventClose: true });
  assert.equal(closed, false);
  assert.equal(dest.locked, false);
  await dest.close();
  assert.equal(closed, true);

  const controller = new AbortController();
  const endless = new ReadableStream({ pull: (c) => sleep(1).then(() => c.enqueue(0)) });
  const piping = endless.pipeTo(new WritableStream(), { signal: controller.signal });
  setTimeout(() => controller.abort(new Error("stop")), 5);
  await assert.rejects(piping, /stop/);
});

test("pipeThrough a transformer with transform and flush", async () => {
  const upper = new TransformStream({
    transform(chunk, c) { c.enqueue(chunk.toUpperCase()); c.enqueue("|"); },
    flush(c) { c.enqueue("END"); },
  });
  const out = fromArray(["a", "b"]).pipeThrough(upper);
  assert.equal(out, upper.readable);
  assert.deepEqual(await readAll(out), ["A", "|", "B", "|", "END"]);

  const failing = new TransformStream({ transform() { throw new Error("bad chunk"); } });
  await assert.rejects(readAll(fromArray([1]).pipeThrough(failing)), /bad chunk/);

  const terminating = new TransformStream({ transform(chunk, c) { c.enqueue(chunk); c.terminate(); } });
  assert.deepEqual(await readAll(fromArray([1, 2, 3]).pipeThrough(terminating)), [1]);
});

test("tee gives both branches every chunk", async () => {
  const [a, b] = fromArray([1, 2, 3]).tee();
  assert.ok(a instanceof ReadableStream && b instanceof ReadableStream);
  const [ra, rb] = await Promise.all([readAll(a), readAll(b)]);
  assert.deepEqual(ra, [1, 2, 3]);
  assert.deepEqual(rb, [1, 2, 3]);

  let reason;
  const source = new ReadableStream({ pull(c) { c.enqueue(1); }, cancel(r) { reason = r; } });
  const [c1, c2] = source.tee();
  // As specified, cancelling one branch settles only once both are cancelled.
  const first = c1.cancel("one");
  await sleep(2);
  assert.equal(reason, undefined, "source stays open while a branch remains");
  await c2.cancel("two");
  await first;
  assert.deepEqual(reason, ["one", "two"]);
});

test("async iteration; early break cancels the source unless preventCancel", async () => {
  const seen = [];
  for await (const x of fromArray([1, 2, 3])) seen.push(x);
  assert.deepEqual(seen, [1, 2, 3]);

  let cancelled = 0, n = 0;
  const source = new ReadableStream({ pull(c) { c.enqueue(n++); }, cancel() { cancelled++; } });
  for await (const x of source) { if (x === 2) break; }
  assert.equal(cancelled, 1);
  assert.equal(source.locked, false);

  const kept = new ReadableStream({ pull(c) { c.enqueue(n++); }, cancel() { cancelled++; } });
  for await (const x of kept.values({ preventCancel: true })) { void x; break; }
  assert.equal(cancelled, 1);
  assert.equal(kept.locked, false);
  assert.equal((await kept.getReader().read()).done, false);

  assert.equal(ReadableStream.prototype[Symbol.asyncIterator], ReadableStream.prototype.values);
  const it = fromArray([]).values();
  assert.equal(it[Symbol.asyncIterator](), it);
});

test("ReadableStream.from takes iterables and async iterables", async () => {
  assert.deepEqual(await readAll(ReadableStream.from([1, 2, 3])), [1, 2, 3]);
  assert.deepEqual(await readAll(ReadableStream.from([Promise.resolve("p"), "q"])), ["p", "q"]);
  async function* gen() { yield "x"; await sleep(1); yield "y"; }
  assert.deepEqual(await readAll(ReadableStream.from(gen())), ["x", "y"]);
  let finalized = false;
  function* infinite() { try { for (let i = 0; ; i++) yield i; } finally { finalized = true; } }
  for await (const x of ReadableStream.from(infinite())) if (x === 3) break;
  assert.equal(finalized, true, "cancel calls the iterator's return()");
  assert.throws(() => ReadableStream.from(42), TypeError);
});

test("errors: source error rejects reads; sink error rejects writes", async () => {
  const boom = new Error("boom");
  const stream = new ReadableStream({ start(c) { c.enqueue(1); c.error(boom); } });
  const reader = stream.getReader();
  await assert.rejects(reader.read(), boom);
  await assert.rejects(reader.closed, boom);

  const pullFails = new ReadableStream({ pull() { throw boom; } });
  await assert.rejects(pullFails.getReader().read(), boom);

  const startFails = new ReadableStream({ start() { return Promise.reject(boom); } });
  await assert.rejects(startFails.getReader().read(), boom);

  let writes = 0;
  const sink = new WritableStream({ write() { writes++; throw boom; } }, { highWaterMark: 5 });
  const writer = sink.getWriter();
  const first = writer.write(1);
  const second = writer.write(2);
  await assert.rejects(first, boom);
  await assert.rejects(second, boom);
  await assert.rejects(writer.write(3), boom);
  await assert.rejects(writer.closed, boom);
  assert.equal(writes, 1);

  let abortedWith, signal;
  const aborted = new WritableStream({ start(c) { signal = c.signal; }, abort(r) { abortedWith = r; } });
  const w = aborted.getWriter();
  await w.abort("why");
  assert.equal(abortedWith, "why");
  assert.equal(signal.aborted, true, "the controller's signal tells the sink");
  await assert.rejects(w.write(1), (e) => e === "why");

  let transformerCancel;
  const ts = new TransformStream({ cancel(r) { transformerCancel = r; } });
  const tsWriter = ts.writable.getWriter();
  await ts.readable.cancel("gone");
  assert.equal(transformerCancel, "gone");
  await assert.rejects(tsWriter.write("x"), (e) => e === "gone", "cancelling the readable errors the writable");
});

test("locking and TypeErrors", async () => {
  const stream = new ReadableStream();
  assert.equal(stream.locked, false);
  const reader = stream.getReader();
  assert.ok(reader instanceof ReadableStreamDefaultReader);
  assert.equal(stream.locked, true);
  assert.throws(() => stream.getReader(), TypeError);
  assert.throws(() => new ReadableStreamDefaultReader(stream), TypeError);
  await assert.rejects(stream.cancel(), TypeError);
  const pending = reader.read();
  reader.releaseLock();
  await assert.rejects(pending, TypeError);
  await assert.rejects(reader.read(), TypeError);
  assert.equal(stream.locked, false);

  let controller;
  const closing = new ReadableStream({ start(c) { controller = c; } });
  assert.ok(controller instanceof ReadableStreamDefaultController);
  controller.close();
  assert.throws(() => controller.enqueue("late"), TypeError);
  assert.throws(() => controller.close(), TypeError);

  const ws = new WritableStream();
  const writer = ws.getWriter();
  assert.ok(writer instanceof WritableStreamDefaultWriter);
  assert.throws(() => ws.getWriter(), TypeError);
  await assert.rejects(ws.close(), TypeError);
  await writer.close();
  await assert.rejects(writer.write("late"), TypeError);
  writer.releaseLock();
  assert.equal(ws.locked, false);

  assert.throws(() => new ReadableStream({ type: "nope" }), TypeError);
  assert.throws(() => new ReadableStream({}, { highWaterMark: -1 }), RangeError);
  assert.throws(() => new ReadableStreamDefaultController(), TypeError);
  assert.throws(() => new TransformStreamDefaultController(), TypeError);
  assert.throws(() => ReadableStream.prototype.getReader.call({}), TypeError);
  assert.throws(() => new ByteLengthQueuingStrategy({}), TypeError);
});

test("byte streams carry ArrayBufferViews and refuse BYOB readers", async () => {
  const bytes = new ReadableStream({
    type: "bytes",
    start(c) {
      assert.equal(c.byobRequest, null);
      c.enqueue(new Uint8Array([1, 2]));
      c.enqueue(new DataView(new Uint8Array([3]).buffer));
      assert.throws(() => c.enqueue("text"), TypeError);
      c.close();
    },
  });
  assert.throws(() => bytes.getReader({ mode: "byob" }), /BYOB/);
  const chunks = await readAll(bytes);
  assert.deepEqual(chunks.map((c) => [...c]), [[1, 2], [3]]);
  assert.ok(chunks.every((c) => c instanceof Uint8Array));
});

test("class names and toStringTags", () => {
  const ts = new TransformStream();
  const cases = [
    [new ReadableStream(), "ReadableStream"],
    [new WritableStream(), "WritableStream"],
    [ts, "TransformStream"],
    [ts.readable.getReader(), "ReadableStreamDefaultReader"],
    [ts.writable.getWriter(), "WritableStreamDefaultWriter"],
    [new CountQueuingStrategy({ highWaterMark: 1 }), "CountQueuingStrategy"],
    [new ByteLengthQueuingStrategy({ highWaterMark: 1 }), "ByteLengthQueuingStrategy"],
    [new TextEncoderStream(), "TextEncoderStream"],
    [new TextDecoderStream(), "TextDecoderStream"],
  ];
  for (const [obj, name] of cases) {
    assert.equal(obj.constructor.name, name);
    assert.equal(Object.prototype.toString.call(obj), `[object ${name}]`);
  }
  let tc;
  new TransformStream({ start(c) { tc = c; } });
  assert.ok(tc instanceof TransformStreamDefaultController);
  assert.equal(Object.prototype.toString.call(tc), "[object TransformStreamDefaultController]");
  assert.deepEqual(Object.keys(new ReadableStream()), [], "no internals on the instance");
});

test("SSE-like: the consumer sees each event before the next is produced", async () => {
  const encoder = new TextEncoder();
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  const consumed = [];
  const seenWhenProduced = [];
  const producer = (async () => {
    for (let i = 0; i < 5; i++) {
      seenWhenProduced.push(consumed.length);
      await writer.write(encoder.encode(`data: event ${i}\n\n`));
      await sleep(2);
    }
    await writer.close();
  })();
  const events = readable.pipeThrough(new TextDecoderStream());
  for await (const text of events) {
    for (const line of text.split("\n\n")) if (line) consumed.push(line);
  }
  await producer;
  assert.deepEqual(consumed, [0, 1, 2, 3, 4].map((i) => `data: event ${i}`));
  assert.deepEqual(seenWhenProduced, [0, 1, 2, 3, 4]);
});
