// Convex file storage, end to end (fixture tests/fixtures/files): upload URLs
// from a mutation and an action (single use, refused when garbage or expired,
// Digest checked, size limit), the `_storage` system table and getMetadata,
// old-style UUID storage ids, serving files at their URL (headers, ranges,
// ETag, HEAD, 404 FileNotFound), deletion and its errors, reactivity of
// `_storage` for ConvexClient, store/get in default-runtime and Node.js
// actions and in HTTP actions, deduplicated blob files under
// <data>/files/blobs collected after the last delete, a 1 GiB streamed upload
// and download in bounded server memory, and a kill -9 in the middle of an
// upload that leaves nothing behind. Requests use Node's fetch; functions are
// called with the official ConvexHttpClient and ConvexClient.
import assert from "node:assert/strict";
import { createCipheriv, createHash, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import path from "node:path";
import { describe } from "node:test";
import { sleep, useServer } from "./harness.mjs";
import { connect } from "./sockets.mjs";
import { api, escapeRegExp, rejects, waitFor } from "./support.mjs";

const MiB = 1 << 20;
const WAIT_MS = 15_000;
/** How long blob collection may take after the last reference goes. */
const COLLECT_MS = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CACHE_CONTROL = "private, max-age=2592000";

const sha256 = (bytes) => createHash("sha256").update(bytes).digest();
const hexOfBase64 = (b64) => Buffer.from(b64, "base64").toString("hex");

/** POSTs `body` to an upload URL; resolves to {status, text, json, headers}. */
async function post(url, body, headers = {}, init = {}) {
  const res = await fetch(url, { method: "POST", headers, body, ...init });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON; the assertions show the text.
  }
  return { status: res.status, text, json, headers: res.headers };
}

/** Asserts an error answer: `status` and JSON `code`. */
function assertError(answer, status, code) {
  assert.equal(answer.status, status, answer.text);
  if (code !== undefined) assert.equal(answer.json?.code, code, answer.text);
}

/** Uploads through a fresh upload URL from the mutation; resolves to the storage id. */
async function upload(server, bytes, contentType) {
  const url = await server.client().mutation(api.files.generateUploadUrl, {});
  const answer = await post(url, bytes, contentType === undefined ? {} : { "Content-Type": contentType });
  assert.equal(answer.status, 200, answer.text);
  assert.equal(typeof answer.json?.storageId, "string", answer.text);
  return answer.json.storageId;
}

const listIds = async (client) => (await client.query(api.files.list, {})).map((doc) => doc._id);

const filesDir = (server, ...parts) => path.join(server.dataDir, "files", ...parts);

/** Every regular file under `dir`, as paths relative to it ([] if it does not exist). */
async function filesUnder(dir) {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (err.code === "ENOENT") return [];
    throw err;
  }
  const found = [];
  for (const entry of entries) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      for (const inner of await filesUnder(full)) found.push(path.join(entry.name, inner));
    } else {
      found.push(entry.name);
    }
  }
  return found;
}

/** The blob files, as "<2 hex>/<64 hex>" paths; fails on anything else there. */
async function blobFiles(server) {
  const files = await filesUnder(filesDir(server, "blobs"));
  for (const file of files) {
    assert.match(file.split(path.sep).join("/"), /^[0-9a-f]{2}\/[0-9a-f]{64}$/, `unexpected file in files/blobs: ${file}`);
  }
  return new Set(files);
}

/** Total bytes of the files under files/tmp. */
async function tmpBytes(server) {
  const dir = filesDir(server, "tmp");
  let total = 0;
  for (const file of await filesUnder(dir)) {
    try {
      total += (await stat(path.join(dir, file))).size;
    } catch (err) {
      if (err.code !== "ENOENT") throw err; // Renamed or removed meanwhile.
    }
  }
  return total;
}

/** waitFor, whose timeout message `what()` describes the state at the time. */
async function until(predicate, timeoutMs, what) {
  try {
    await waitFor(predicate, timeoutMs, "");
  } catch (err) {
    if (err.message.startsWith("timed out waiting for")) err.message = `timed out waiting for ${what()}`;
    throw err;
  }
}

async function waitForEmptyTmp(server) {
  let left = [];
  await until(
    async () => (left = await filesUnder(filesDir(server, "tmp"))).length === 0,
    COLLECT_MS,
    () => `files/tmp to be empty (still ${JSON.stringify(left)})`,
  );
}

/**
 * A ReadableStream of `total` deterministic pseudo-random bytes (the AES-CTR
 * keystream of `seed`), made on the fly in chunks of `chunkSize` and hashed
 * (SHA-256) as they are produced. `beforeChunk(produced)` may delay the next
 * chunk, or fail the stream by throwing.
 */
function pseudoRandomSource(total, { seed, chunkSize = MiB, beforeChunk } = {}) {
  const key = createHash("sha256").update(String(seed)).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(chunkSize);
  const hash = createHash("sha256");
  const source = { produced: 0, digest: null };
  source.stream = new ReadableStream(
    {
      async pull(controller) {
        if (source.produced >= total) {
          source.digest = hash.digest("hex");
          controller.close();
          return;
        }
        if (beforeChunk) await beforeChunk(source.produced);
        const n = Math.min(chunkSize, total - source.produced);
        const chunk = cipher.update(zeros.subarray(0, n));
        hash.update(chunk);
        source.produced += n;
        controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      },
    },
    { highWaterMark: 0 },
  );
  return source;
}

/** Streams a GET of `url`, hashing chunk by chunk; resolves to {status, headers, size, sha256Hex}. */
async function streamedDownload(url) {
  const res = await fetch(url);
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of res.body) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { status: res.status, headers: res.headers, size, sha256Hex: hash.digest("hex") };
}

/** The server process's resident set size in bytes (VmRSS). */
function rssBytes(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  assert.ok(match, `no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/** Samples the RSS of `pid` every 100 ms; stop() resolves to the maximum seen. */
function sampleRss(pid) {
  let max = rssBytes(pid);
  let error = null;
  const timer = setInterval(() => {
    try {
      max = Math.max(max, rssBytes(pid));
    } catch (err) {
      error ??= err;
    }
  }, 100);
  return {
    stop() {
      clearInterval(timer);
      if (error) throw error;
      return Math.max(max, rssBytes(pid));
    },
  };
}

describe("uploads, URLs, metadata and deletion", () => {
  const srv = useServer((server) => server.deploy("files"));
  const test = srv.test;

  test("upload URLs from a mutation and from an action take a raw POST once", async (t, server) => {
    const client = server.client();
    const before = await listIds(client);
    const urlPattern = new RegExp(`^${escapeRegExp(`${server.url}/api/storage/upload?token=`)}[^&#\\s]+$`);
    const fromMutation = await client.mutation(api.files.generateUploadUrl, {});
    const fromAction = await client.action(api.files.generateUploadUrlInAction, {});
    assert.match(fromMutation, urlPattern);
    assert.match(fromAction, urlPattern);
    assert.notEqual(fromMutation, fromAction);

    const ids = [];
    for (const url of [fromMutation, fromAction]) {
      const bytes = randomBytes(1000);
      const answer = await post(url, bytes, { "Content-Type": "application/x-upload-test" });
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(Object.keys(answer.json), ["storageId"]);
      const { storageId } = answer.json;
      // The storage id is the `_storage` document's id.
      const doc = await client.query(api.files.get, { id: storageId });
      assert.equal(doc?._id, storageId);
      assert.equal(doc.size, 1000);
      ids.push(storageId);

      // Single use: the same URL again is refused and stores nothing.
      assertError(await post(url, bytes), 401, "StorageTokenUsed");
    }
    assert.notEqual(ids[0], ids[1]);
    assert.deepEqual((await listIds(client)).sort(), [...before, ...ids].sort());

    // A garbage token and a tampered one are invalid; the tampered-with URL stays usable.
    assertError(await post(`${server.url}/api/storage/upload?token=garbage`, "x"), 401, "StorageTokenInvalid");
    const fresh = new URL(await client.mutation(api.files.generateUploadUrl, {}));
    const token = fresh.searchParams.get("token");
    const middle = Math.floor(token.length / 2);
    const tampered = new URL(fresh);
    tampered.searchParams.set("token", token.slice(0, middle) + (token[middle] === "0" ? "1" : "0") + token.slice(middle + 1));
    assertError(await post(tampered.href, "x"), 401, "StorageTokenInvalid");
    assert.deepEqual((await listIds(client)).sort(), [...before, ...ids].sort());
    const answer = await post(fresh.href, new Uint8Array([1, 2, 3]));
    assert.equal(answer.status, 200, answer.text);
  });

  test("_storage documents and getMetadata describe the upload", async (t, server) => {
    const client = server.client();
    const typed = randomBytes(3000);
    const untyped = randomBytes(17);
    const typedId = await upload(server, typed, "image/x-test");
    const untypedId = await upload(server, untyped);

    const typedDoc = await client.query(api.files.get, { id: typedId });
    assert.deepEqual(Object.keys(typedDoc).sort(), ["_creationTime", "_id", "contentType", "sha256", "size"]);
    assert.equal(typedDoc._id, typedId);
    assert.equal(typeof typedDoc._creationTime, "number");
    assert.equal(typedDoc.sha256, sha256(typed).toString("base64"));
    assert.equal(typedDoc.size, 3000);
    assert.equal(typedDoc.contentType, "image/x-test");

    // Without a Content-Type, the document has no contentType field at all.
    const untypedDoc = await client.query(api.files.get, { id: untypedId });
    assert.deepEqual(Object.keys(untypedDoc).sort(), ["_creationTime", "_id", "sha256", "size"]);
    assert.equal(untypedDoc.sha256, sha256(untyped).toString("base64"));
    assert.equal(untypedDoc.size, 17);

    // The system table's query returns the same documents.
    const listed = await client.query(api.files.list, {});
    assert.deepEqual(listed.find((doc) => doc._id === typedId), typedDoc);
    assert.deepEqual(listed.find((doc) => doc._id === untypedId), untypedDoc);

    // getMetadata: an old-style storage id (a UUID), the hex SHA-256, contentType null when none.
    const typedMeta = await client.query(api.files.getMetadata, { storageId: typedId });
    assert.match(typedMeta.storageId, UUID);
    assert.deepEqual(typedMeta, {
      storageId: typedMeta.storageId,
      sha256: sha256(typed).toString("hex"),
      size: 3000,
      contentType: "image/x-test",
    });
    const untypedMeta = await client.query(api.files.getMetadata, { storageId: untypedId });
    assert.match(untypedMeta.storageId, UUID);
    assert.notEqual(untypedMeta.storageId, typedMeta.storageId);
    assert.deepEqual(untypedMeta, {
      storageId: untypedMeta.storageId,
      sha256: sha256(untyped).toString("hex"),
      size: 17,
      contentType: null,
    });
  });

  test("a file is served at its URL with Convex's headers, byte ranges, ETag and HEAD", async (t, server) => {
    const client = server.client();
    const bytes = randomBytes(1000);
    const id = await upload(server, bytes, "application/x-range-test");
    const url = await client.query(api.files.getUrl, { storageId: id });
    assert.equal(url, `${server.url}/api/storage/${id}`);

    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-range-test");
    assert.equal(res.headers.get("content-length"), "1000");
    assert.equal(res.headers.get("accept-ranges"), "bytes");
    assert.equal(res.headers.get("cache-control"), CACHE_CONTROL);
    const etag = res.headers.get("etag");
    assert.ok(etag, "no ETag");
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);

    const ranges = [
      ["bytes=10-19", 10, 19],
      ["bytes=0-0", 0, 0],
      ["bytes=990-", 990, 999],
      ["bytes=-5", 995, 999],
      // A last byte past the end is clamped to the file's (RFC 9110).
      ["bytes=995-5000", 995, 999],
    ];
    for (const [range, first, last] of ranges) {
      const part = await fetch(url, { headers: { Range: range } });
      assert.equal(part.status, 206, range);
      assert.equal(part.headers.get("content-range"), `bytes ${first}-${last}/1000`, range);
      assert.equal(part.headers.get("content-length"), String(last - first + 1), range);
      assert.deepEqual(Buffer.from(await part.arrayBuffer()), bytes.subarray(first, last + 1), range);
    }
    for (const range of ["bytes=1000-1005", "bytes=5000-"]) {
      const refused = await fetch(url, { headers: { Range: range } });
      await refused.arrayBuffer();
      assert.equal(refused.status, 416, range);
    }

    const cached = await fetch(url, { headers: { "If-None-Match": etag } });
    assert.equal(cached.status, 304);
    assert.equal((await cached.arrayBuffer()).byteLength, 0);
    const stale = await fetch(url, { headers: { "If-None-Match": '"not-the-etag"' } });
    assert.equal(stale.status, 200);
    assert.deepEqual(Buffer.from(await stale.arrayBuffer()), bytes);
    assert.equal(stale.headers.get("etag"), etag);

    const head = await fetch(url, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get("content-type"), "application/x-range-test");
    assert.equal(head.headers.get("content-length"), "1000");
    assert.equal(head.headers.get("etag"), etag);
    assert.equal(head.headers.get("accept-ranges"), "bytes");
    assert.equal((await head.arrayBuffer()).byteLength, 0);
  });

  test("old-style storage ids (UUIDs) work with getUrl, getMetadata, storage.get and delete", async (t, server) => {
    const client = server.client();
    const text = "old-style id ✓";
    const id = await upload(server, Buffer.from(text), "text/plain");
    const meta = await client.query(api.files.getMetadata, { storageId: id });
    const uuid = meta.storageId;
    assert.match(uuid, UUID);

    assert.deepEqual(await client.query(api.files.getMetadataByString, { storageId: uuid }), meta);
    const url = await client.query(api.files.getUrlByString, { storageId: uuid });
    assert.equal(typeof url, "string");
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), text);
    assert.equal(await client.action(api.files.getText, { storageId: uuid }), text);
    assert.deepEqual(await client.action(api.node.getTextNode, { storageId: uuid }), {
      text,
      sha256Hex: sha256(Buffer.from(text)).toString("hex"),
    });

    await client.mutation(api.files.removeByString, { storageId: uuid });
    assert.equal(await client.query(api.files.get, { id }), null);
    assert.equal(await client.query(api.files.getUrl, { storageId: id }), null);
    assert.equal(await client.query(api.files.getUrlByString, { storageId: uuid }), null);
    assert.equal(await client.query(api.files.getMetadataByString, { storageId: uuid }), null);
    assert.equal(await client.action(api.files.getText, { storageId: uuid }), null);
    assert.ok(!(await listIds(client)).includes(id));
    const gone = await fetch(url);
    assert.equal(gone.status, 404);
    assert.equal((await gone.json()).code, "FileNotFound");
  });

  test("a Digest header must match the body", async (t, server) => {
    const client = server.client();
    const bytes = randomBytes(4096);
    const digest = sha256(bytes).toString("base64");

    const before = await listIds(client);
    const wrongUrl = await client.mutation(api.files.generateUploadUrl, {});
    const wrong = await post(wrongUrl, bytes, { Digest: `sha-256=${sha256(Buffer.from("other")).toString("base64")}` });
    assertError(wrong, 400);
    assert.deepEqual((await listIds(client)).sort(), before.sort());

    const rightUrl = await client.mutation(api.files.generateUploadUrl, {});
    const right = await post(rightUrl, bytes, { Digest: `sha-256=${digest}`, "Content-Type": "application/octet-stream" });
    assert.equal(right.status, 200, right.text);
    const doc = await client.query(api.files.get, { id: right.json.storageId });
    assert.equal(doc.sha256, digest);
  });

  test("deleted and unknown files: null URL and metadata, 404 FileNotFound, delete errors", async (t, server) => {
    const client = server.client();
    const id = await upload(server, randomBytes(100), "application/x-doomed");
    const url = await client.query(api.files.getUrl, { storageId: id });
    assert.equal((await fetch(url)).status, 200);

    await client.mutation(api.files.remove, { storageId: id });
    assert.equal(await client.query(api.files.get, { id }), null);
    assert.equal(await client.query(api.files.getUrl, { storageId: id }), null);
    assert.equal(await client.query(api.files.getMetadata, { storageId: id }), null);
    assert.equal(await client.action(api.files.getText, { storageId: id }), null);
    assert.equal(await client.action(api.node.getTextNode, { storageId: id }), null);
    assert.ok(!(await listIds(client)).includes(id));

    for (const missing of [url, `${server.url}/api/storage/${randomUUID()}`]) {
      const res = await fetch(missing);
      assert.equal(res.status, 404, missing);
      assert.equal((await res.json()).code, "FileNotFound", missing);
    }

    await rejects(client.mutation(api.files.remove, { storageId: id }), /storage id \S+ not found/);
    await rejects(
      client.mutation(api.files.removeByString, { storageId: "nonsense" }),
      "Invalid argument `storageId` for `storage.delete`",
    );
  });

  test("_storage is reactive: a ConvexClient sees an upload appear and a delete disappear", async (t, server) => {
    const { client: live } = connect(t, server);
    const values = [];
    const errors = [];
    const unsubscribe = live.onUpdate(api.files.list, {}, (v) => values.push(v), (e) => errors.push(e));
    t.after(() => unsubscribe());
    await waitFor(() => values.length > 0 || errors.length > 0, WAIT_MS, "the first result");
    assert.deepEqual(errors, []);

    const has = (id) => values.at(-1).some((doc) => doc._id === id);
    const id = await upload(server, randomBytes(64), "application/x-live");
    await waitFor(() => has(id), WAIT_MS, "the upload in the subscription");
    const doc = values.at(-1).find((d) => d._id === id);
    assert.deepEqual(doc, await server.client().query(api.files.get, { id }));

    await server.client().mutation(api.files.remove, { storageId: id });
    await waitFor(() => !has(id), WAIT_MS, "the delete in the subscription");
    assert.deepEqual(errors, []);
  });

  test("default-runtime and Node.js actions store and get blobs", async (t, server) => {
    const client = server.client();
    const text = "héllo, storage €𝄞\n".repeat(40);
    const bytes = Buffer.from(text, "utf8");
    const hex = sha256(bytes).toString("hex");

    // Stored by a default-runtime action, read by both runtimes.
    const id = await client.action(api.files.storeText, { text, contentType: "text/plain; charset=utf-8" });
    const doc = await client.query(api.files.get, { id });
    assert.deepEqual(doc, {
      _id: id,
      _creationTime: doc._creationTime,
      sha256: sha256(bytes).toString("base64"),
      size: bytes.length,
      contentType: "text/plain; charset=utf-8",
    });
    assert.equal(await client.action(api.files.getText, { storageId: id }), text);
    assert.deepEqual(await client.action(api.files.getBlobInfo, { storageId: id }), {
      type: "text/plain; charset=utf-8",
      size: bytes.length,
    });
    assert.deepEqual(await client.action(api.node.getTextNode, { storageId: id }), { text, sha256Hex: hex });
    const res = await fetch(await client.query(api.files.getUrl, { storageId: id }));
    assert.equal(res.headers.get("content-type"), "text/plain; charset=utf-8");
    assert.equal(await res.text(), text);

    // Stored by a Node.js action: its node:crypto digest is the document's.
    const nodeText = `from node ${randomUUID()} ✓`;
    const stored = await client.action(api.node.storeTextNode, { text: nodeText, contentType: "text/x-node" });
    assert.deepEqual(Object.keys(stored).sort(), ["sha256Hex", "storageId"]);
    assert.equal(stored.sha256Hex, sha256(Buffer.from(nodeText)).toString("hex"));
    const nodeDoc = await client.query(api.files.get, { id: stored.storageId });
    assert.equal(hexOfBase64(nodeDoc.sha256), stored.sha256Hex);
    assert.equal(nodeDoc.size, Buffer.byteLength(nodeText));
    assert.equal(nodeDoc.contentType, "text/x-node");
    assert.equal(await client.action(api.files.getText, { storageId: stored.storageId }), nodeText);
    assert.deepEqual(await client.action(api.node.getTextNode, { storageId: stored.storageId }), {
      text: nodeText,
      sha256Hex: stored.sha256Hex,
    });
  });

  test("an HTTP action stores a request body and serves it back on the site port", async (t, server) => {
    const client = server.client();
    const bytes = randomBytes(64 * 1024);
    const res = await fetch(`${server.siteUrl}/store`, {
      method: "POST",
      headers: { "Content-Type": "application/x-from-http" },
      body: bytes,
    });
    const text = await res.text();
    assert.equal(res.status, 200, text);
    const { storageId } = JSON.parse(text);
    const doc = await client.query(api.files.get, { id: storageId });
    assert.equal(doc?.size, bytes.length);
    assert.equal(doc.sha256, sha256(bytes).toString("base64"));
    assert.equal(doc.contentType, "application/x-from-http");

    const back = await fetch(`${server.siteUrl}/file?id=${encodeURIComponent(storageId)}`);
    assert.equal(back.status, 200);
    assert.equal(back.headers.get("content-type"), "application/x-from-http");
    assert.deepEqual(Buffer.from(await back.arrayBuffer()), bytes);
    const direct = await fetch(await client.query(api.files.getUrl, { storageId }));
    assert.deepEqual(Buffer.from(await direct.arrayBuffer()), bytes);

    await client.mutation(api.files.remove, { storageId });
    const gone = await fetch(`${server.siteUrl}/file?id=${encodeURIComponent(storageId)}`);
    assert.equal(gone.status, 404);
    assert.equal(await gone.text(), "no such file");
  });

  test("identical uploads are two files on one blob, collected after the last delete", async (t, server) => {
    const client = server.client();
    const blobsBefore = await blobFiles(server);
    const bytes = randomBytes(10_000);
    const first = await upload(server, bytes, "application/x-dup");
    const second = await upload(server, bytes, "application/x-dup");
    assert.notEqual(first, second);
    const docs = await client.query(api.files.list, {});
    assert.ok(docs.some((d) => d._id === first) && docs.some((d) => d._id === second));

    const added = [...(await blobFiles(server))].filter((f) => !blobsBefore.has(f));
    assert.equal(added.length, 1, `new blob files: ${JSON.stringify(added)}`);
    const shared = path.join(filesDir(server, "blobs"), added[0]);

    // Deleting one keeps the blob: once a blob deleted after it has been
    // collected, the shared one is still there and still served.
    await client.mutation(api.files.remove, { storageId: first });
    const before = await blobFiles(server);
    const other = await upload(server, randomBytes(500), "application/x-other");
    const otherBlobs = [...(await blobFiles(server))].filter((f) => !before.has(f));
    assert.equal(otherBlobs.length, 1);
    await client.mutation(api.files.remove, { storageId: other });
    const otherPath = path.join(filesDir(server, "blobs"), otherBlobs[0]);
    await waitFor(async () => !(await exists(otherPath)), COLLECT_MS, `collection of ${otherPath}`);
    assert.ok(await exists(shared), "the blob still referenced by a file was removed");
    const url = await client.query(api.files.getUrl, { storageId: second });
    assert.deepEqual(Buffer.from(await (await fetch(url)).arrayBuffer()), bytes);

    // Deleting the last file removes the blob shortly after.
    await client.mutation(api.files.remove, { storageId: second });
    await waitFor(async () => !(await exists(shared)), COLLECT_MS, `collection of ${shared}`);
  });

  test(
    "a 1 GiB upload and download stream through the server in bounded memory",
    async (t, server) => {
      const SIZE = 1024 * MiB;
      const LIMIT = 64 * MiB;
      const client = server.client();
      const pid = server.child.pid;

      // Warm up the upload and download paths, so that one-time allocations are not counted.
      const warmUp = pseudoRandomSource(4 * MiB, { seed: "warm-up" });
      const warmUrl = await client.mutation(api.files.generateUploadUrl, {});
      const warm = await post(warmUrl, warmUp.stream, { "Content-Type": "application/octet-stream" }, { duplex: "half" });
      assert.equal(warm.status, 200, warm.text);
      const warmDown = await streamedDownload(await client.query(api.files.getUrl, { storageId: warm.json.storageId }));
      assert.equal(warmDown.sha256Hex, warmUp.digest);
      await client.mutation(api.files.remove, { storageId: warm.json.storageId });

      const baseline = rssBytes(pid);
      const sampler = sampleRss(pid);
      let peak;
      try {
        const source = pseudoRandomSource(SIZE, { seed: "one gibibyte" });
        const url = await client.mutation(api.files.generateUploadUrl, {});
        const answer = await post(url, source.stream, { "Content-Type": "application/octet-stream" }, { duplex: "half" });
        assert.equal(answer.status, 200, answer.text);
        assert.equal(source.produced, SIZE);
        const { storageId } = answer.json;

        const doc = await client.query(api.files.get, { id: storageId });
        assert.equal(doc.size, SIZE);
        assert.equal(hexOfBase64(doc.sha256), source.digest);

        const down = await streamedDownload(await client.query(api.files.getUrl, { storageId }));
        assert.equal(down.status, 200);
        assert.equal(down.headers.get("content-length"), String(SIZE));
        assert.equal(down.size, SIZE);
        assert.equal(down.sha256Hex, source.digest);
        peak = sampler.stop();
        await client.mutation(api.files.remove, { storageId });
      } finally {
        peak ??= sampler.stop();
      }
      const growth = peak - baseline;
      t.diagnostic(`server RSS ${(baseline / MiB).toFixed(1)} MiB before, peak ${(peak / MiB).toFixed(1)} MiB`);
      assert.ok(
        growth < LIMIT,
        `server RSS grew by ${(growth / MiB).toFixed(1)} MiB (from ${(baseline / MiB).toFixed(1)} MiB), limit 64 MiB`,
      );
    },
    { timeout: 30 * 60_000 },
  );
});

async function exists(file) {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if (err.code === "ENOENT") return false;
    throw err;
  }
}

describe("upload URLs expire", () => {
  const srv = useServer((server) => server.deploy("files"), { args: ["--upload-url-ttl", "1"] });

  srv.test("a URL used after its lifetime is refused with StorageTokenExpired", async (t, server) => {
    const client = server.client();
    const urls = [
      await client.mutation(api.files.generateUploadUrl, {}),
      await client.action(api.files.generateUploadUrlInAction, {}),
    ];
    // The lifetime is 1 s; let it pass with a margin for whole-second clocks.
    await sleep(2_500);
    for (const url of urls) {
      assertError(await post(url, randomBytes(10)), 401, "StorageTokenExpired");
    }
    assert.deepEqual(await client.query(api.files.list, {}), []);
    assert.equal((await blobFiles(server)).size, 0);
  });
});

describe("the file size limit", () => {
  const LIMIT = 1024;
  const srv = useServer((server) => server.deploy("files"), { args: ["--max-file-size", String(LIMIT)] });

  srv.test("a body over --max-file-size is refused with 413 and nothing is stored", async (t, server) => {
    const client = server.client();
    const url = () => client.mutation(api.files.generateUploadUrl, {});

    // With a Content-Length, and streamed (chunked) without one.
    assertError(await post(await url(), randomBytes(LIMIT + 1)), 413, "StorageFileTooLarge");
    const chunks = [randomBytes(LIMIT), randomBytes(1)];
    const stream = new ReadableStream({
      pull(controller) {
        if (chunks.length === 0) controller.close();
        else controller.enqueue(new Uint8Array(chunks.shift()));
      },
    });
    assertError(await post(await url(), stream, {}, { duplex: "half" }), 413, "StorageFileTooLarge");

    assert.deepEqual(await client.query(api.files.list, {}), []);
    assert.equal((await blobFiles(server)).size, 0);
    await waitForEmptyTmp(server);

    // Exactly the limit is accepted.
    const bytes = randomBytes(LIMIT);
    const id = await upload(server, bytes, "application/x-limit");
    assert.deepEqual(await listIds(client), [id]);
    assert.equal((await blobFiles(server)).size, 1);
    const res = await fetch(await client.query(api.files.getUrl, { storageId: id }));
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
  });
});

describe("kill -9 during an upload", () => {
  const srv = useServer((server) => server.deploy("files"));

  srv.test("leaves no file, no blob and no temporary file; uploads work after a restart", async (t, server) => {
    const TOTAL = 200 * MiB;
    const STALL_AT = 50 * MiB;
    const client = server.client();

    // The test feeds 50 MiB of a 200 MiB upload, then holds the rest back
    // until the server has been killed.
    let reachedStall;
    const stalled = new Promise((resolve) => (reachedStall = resolve));
    let releaseStall;
    const released = new Promise((resolve) => (releaseStall = resolve));
    const source = pseudoRandomSource(TOTAL, {
      seed: "killed",
      beforeChunk: async (produced) => {
        if (produced < STALL_AT) return;
        reachedStall();
        await released;
        throw new Error("the server was killed");
      },
    });
    const url = await client.mutation(api.files.generateUploadUrl, {});
    const uploading = post(url, source.stream, { "Content-Type": "application/octet-stream" }, { duplex: "half" }).then(
      (answer) => ({ answer }),
      (error) => ({ error }),
    );
    await Promise.race([stalled, uploading]);
    assert.equal(source.produced, STALL_AT, "the upload ended before 50 MiB were sent");

    // The server is mid-upload: a partial temporary file, no file yet.
    let tmp = 0;
    await until(
      async () => (tmp = await tmpBytes(server)) >= 16 * MiB,
      WAIT_MS,
      () => `16 MiB of the upload in files/tmp (${tmp} bytes there)`,
    );
    assert.deepEqual(await client.query(api.files.list, {}), []);

    const exit = await server.kill();
    assert.equal(exit.signal, "SIGKILL");
    releaseStall();
    const outcome = await uploading;
    assert.ok(outcome.error, `the killed upload answered ${outcome.answer?.status}: ${outcome.answer?.text}`);

    await server.restart();
    const after = server.client();
    assert.deepEqual(await after.query(api.files.list, {}), []);
    assert.equal((await blobFiles(server)).size, 0);
    await waitForEmptyTmp(server);
    assert.equal((await blobFiles(server)).size, 0);

    // A fresh upload works and leaves no temporary file behind.
    const bytes = randomBytes(256 * 1024);
    const id = await upload(server, bytes, "application/x-after-kill");
    assert.deepEqual(await listIds(after), [id]);
    const res = await fetch(await after.query(api.files.getUrl, { storageId: id }));
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), bytes);
    assert.equal((await blobFiles(server)).size, 1);
    await waitForEmptyTmp(server);
  });
});
