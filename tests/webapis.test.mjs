// End-to-end checks of the web APIs that Convex functions expect (TextEncoder
// and TextDecoder, URL and URLSearchParams, atob/btoa, crypto.getRandomValues,
// randomUUID and subtle.digest, structuredClone, Headers/Request/Response),
// inside a query and an action. fetch itself is covered by api.test.mjs.
import assert from "node:assert/strict";
import { useServer } from "./harness.mjs";
import { api } from "./support.mjs";

const srv = useServer(async (server) => {
  await server.deploy("webapis");
});
const test = srv.test;

const ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function checkAll(results) {
  const errors = Object.entries(results).filter(([, r]) => "error" in r);
  assert.deepStrictEqual(Object.fromEntries(errors.map(([k, r]) => [k, r.error])), {});
  const { textEncoding, url, base64, getRandomValues, randomUUID, digest, fetchClasses, structuredClone } =
    Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.ok]));
  assert.deepStrictEqual(textEncoding, { length: 14, back: "héllo €𝄞" });
  assert.deepStrictEqual(url, {
    host: "example.com:8080",
    pathname: "/a/b",
    y: "two words",
    // WHATWG (and Node) re-serialize the query as "y=two+words" after append;
    // llrt_url 0.8.1-beta keeps "two%20words". Both decode the same.
    hrefEnd: "&z=3#frag",
    params: "a=1&b=x+y",
  });
  assert.deepStrictEqual(base64, { encoded: "aGVsbG8sIHdvcmxk", decoded: "hello, world" });
  assert.deepStrictEqual(getRandomValues, { length: 16, isUint8Array: true });
  assert.match(randomUUID, UUID_V4);
  assert.deepStrictEqual(digest, { length: 32, hex: ABC_SHA256 });
  assert.deepStrictEqual(fetchClasses, {
    contentType: "text/plain",
    many: "a, b",
    status: 201,
    ok: true,
    header: "z",
    json: { x: 1 },
    bytes: 6,
    method: "POST",
    url: "https://example.com/p?q=1",
  });
  assert.deepStrictEqual(structuredClone, {
    copy: { a: 1, nested: { list: [1, "two", { three: 3 }, 4] }, when: 5 },
    originalLength: 3,
    same: false,
  });
}

test("web APIs in a query", async (t, server) => {
  checkAll(await server.client().query(api.probe.inQuery, {}));
});

test("web APIs in an action", async (t, server) => {
  checkAll(await server.client().action(api.probe.inAction, {}));
});

test("random values in a query", async (t, server) => {
  const r = await server.client().query(api.probe.randomInQuery, {});
  assert.match(r.uuid, UUID_V4);
  assert.match(r.bytes, /^[0-9a-f]{16}$/);
});
