// Client-side helpers shared by the end-to-end tests: function references,
// error assertions, deterministic randomness, value builders and pagination.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { REPO } from "./harness.mjs";
import { connect } from "./sockets.mjs";
import { anyApi, getFunctionName } from "convex/server";
import { ConvexError } from "convex/values";

/** Function references by path, exactly what generated api.js provides. */
export const api = anyApi;
export { ConvexError };

/** A name no other test (or earlier run on the same data) uses. */
export function uniqueName(prefix) {
  return `${prefix}-${randomBytes(6).toString("hex")}`;
}

/**
 * Awaits a promise that must reject; checks every pattern (RegExp or
 * substring) against the error message and returns the error.
 */
export async function rejects(promise, ...patterns) {
  let error = null;
  try {
    await promise;
  } catch (err) {
    error = err;
  }
  assert.ok(error, `expected a rejection matching ${patterns.join(", ")}`);
  for (const pattern of patterns) {
    if (pattern instanceof RegExp) {
      assert.match(error.message, pattern);
    } else {
      assert.ok(
        error.message.includes(pattern),
        `error message should mention ${JSON.stringify(pattern)}: ${error.message}`,
      );
    }
  }
  return error;
}

/** Like rejects(), and the error must be a ConvexError carrying `data`. */
export async function rejectsWithData(promise, data) {
  const error = await rejects(promise);
  assert.ok(error instanceof ConvexError, `not a ConvexError: ${error.stack}`);
  assert.deepStrictEqual(error.data, data);
  return error;
}

/** Convex's errorMessage starts so, as a RegExp source. */
export const SERVER_ERROR = String.raw`\[Request ID: [a-f0-9]{16}\] Server Error\n`;

export const escapeRegExp = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const KIND_LETTERS = { query: "Q", mutation: "M", action: "A" };

/**
 * Calls `ref` (a `kind` function) through ConvexHttpClient and through
 * ConvexClient, and checks each error's message against `pattern`, a RegExp
 * source for Convex's whole errorMessage; the WebSocket client adds
 * `[CONVEX Q(path)] ` and `\n  Called by client` itself. Returns both errors.
 */
export async function rejectsOnBothClients(t, server, kind, ref, args, pattern) {
  const path = getFunctionName(ref);
  const { client: ws } = connect(t, server);
  const prefix = escapeRegExp(`[CONVEX ${KIND_LETTERS[kind]}(${path})] `);
  const errors = [];
  for (const [client, expected] of [
    [server.client(), `^${pattern}$`],
    [ws, `^${prefix}${pattern}\n  Called by client$`],
  ]) {
    const error = await rejects(client[kind](ref, args));
    assert.match(error.message, new RegExp(expected));
    errors.push(error);
  }
  return errors;
}

/** Convex's string order: by UTF-8 bytes. */
export function compareUtf8(a, b) {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export function bytes(values) {
  return new Uint8Array(values).buffer;
}

export function range(n) {
  return Array.from({ length: n }, (_, i) => i);
}

/** Small seeded PRNG (mulberry32) so a failing random run can be replayed. */
export function seededRandom(seed) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (lo, hi) => lo + Math.floor(next() * (hi - lo + 1));
  return next;
}

/** A document without _creationTime, for comparison with a local model. */
export function withoutCreationTime(doc) {
  const { _creationTime, ...rest } = doc;
  return rest;
}

/**
 * Calls `fetchPage(cursor)` from `cursor` (null: the start) until isDone;
 * returns the pages. Fails if the query never finishes.
 */
export async function allPages(fetchPage, cursor = null, maxPages = 10_000) {
  const pages = [];
  for (;;) {
    const result = await fetchPage(cursor);
    pages.push(result);
    if (result.isDone) return pages;
    assert.equal(typeof result.continueCursor, "string");
    assert.ok(pages.length < maxPages, "pagination does not terminate");
    cursor = result.continueCursor;
  }
}

/** Polls until `predicate()` is truthy. */
export async function waitFor(predicate, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const SEEDS = path.join(REPO, "seeds", "advisors");

/** The advisor seed files (sorted) and their parsed records. */
export async function seedFiles(dir = SEEDS) {
  const names = (await readdir(dir)).filter((f) => f.endsWith(".json")).sort();
  const files = names.map((f) => path.join(dir, f));
  const records = await Promise.all(
    files.map(async (f) => JSON.parse(await readFile(f, "utf8"))),
  );
  return { files, records };
}

/** Total subscription query executions since the server started (admin-only metrics). */
export async function subscriptionExecutions(server) {
  const res = await fetch(`${server.url}/api/convect/metrics`, {
    headers: { Authorization: `Convex ${server.adminKey}` },
  });
  const body = await res.text();
  assert.equal(res.status, 200, body);
  const { subscriptionExecutions: count } = JSON.parse(body);
  assert.ok(Number.isInteger(count), body);
  return count;
}

/** Records a live query's values and errors; `unsubscribe` stops it. */
export function recordUpdates(client, query, args) {
  const rec = { values: [], errors: [] };
  rec.unsubscribe = client.onUpdate(
    query,
    args,
    (value) => rec.values.push(value),
    (error) => rec.errors.push(error),
  );
  rec.latest = () => rec.values.at(-1);
  return rec;
}
