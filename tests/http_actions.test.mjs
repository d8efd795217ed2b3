// HTTP actions (convex/http.ts), buffered: served on the site port at the root
// and under /http/ on the API port, routed by the app's HttpRouter, with
// Convex's error bodies and limits. Requests use Node's fetch; writes are
// checked with the official ConvexHttpClient.
import assert from "node:assert/strict";
import { useServer } from "./harness.mjs";
import { api, uniqueName } from "./support.mjs";

// A short action time limit, so that the test of a handler that never ends is quick.
const srv = useServer((server) => server.deploy("http"), { args: ["--action-timeout", "2"] });
const test = srv.test;

const REQUEST_ID = String.raw`\[Request ID: [a-f0-9]{16}\] Server Error: `;
/** Both ways to reach a route: the site port's root and the API port's /http/. */
const bases = (server) => [
  ["site port", server.siteUrl],
  ["/http/ on the API port", `${server.url}/http`],
];

test("routes match by exact path and method, on both ports", async (t, server) => {
  for (const [where, base] of bases(server)) {
    const res = await fetch(`${base}/hello?q=1`);
    assert.equal(res.status, 200, where);
    const body = await res.json();
    // The URL the handler sees is the deployment's site URL.
    assert.deepEqual(body, { method: "GET", url: `${server.siteUrl}/hello?q=1`, pathname: "/hello", q: "1" }, where);
    const put = await fetch(`${base}/hello`, { method: "PUT" });
    assert.equal(await put.text(), "put hello", where);
  }
});

test("routes match by path prefix, the longest prefix first", async (t, server) => {
  const res = await fetch(`${server.siteUrl}/files/a/b.txt`);
  assert.equal((await res.json()).pathname, "/files/a/b.txt");
  assert.equal(await (await fetch(`${server.siteUrl}/files/special/x`)).text(), "longest prefix");
});

test("an unknown route or an unrouted method answers 404 as convex/server does", async (t, server) => {
  for (const [where, base] of bases(server)) {
    const res = await fetch(`${base}/nowhere`);
    assert.equal(res.status, 404, where);
    assert.equal(await res.text(), "No HttpAction routed for /nowhere", where);
    const post = await fetch(`${base}/hello`, { method: "POST", body: "x" });
    assert.equal(post.status, 404, where);
    assert.equal(await post.text(), "No HttpAction routed for /hello", where);
  }
});

test("a JSON webhook writes through runMutation, visible to a query", async (t, server) => {
  const source = uniqueName("hook");
  const res = await fetch(`${server.siteUrl}/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ source, text: "hello hook" }),
  });
  assert.equal(res.status, 201);
  const body = await res.json();
  assert.equal(body.count, 1);
  assert.equal(typeof body.id, "string");
  assert.deepEqual(await server.client().query(api.messages.bySource, { source }), ["hello hook"]);
});

test("status, headers and two Set-Cookie headers round-trip", async (t, server) => {
  for (const [where, base] of bases(server)) {
    const res = await fetch(`${base}/headers`, { method: "POST", headers: { "x-custom": "v1" }, body: "text in" });
    assert.equal(res.status, 418, where);
    assert.equal(res.headers.get("x-echo"), "v1", where);
    assert.equal(res.headers.get("content-type"), "text/plain", where);
    assert.deepEqual(res.headers.getSetCookie(), ["a=1; Path=/", "b=2; Path=/"], where);
    assert.equal(await res.text(), "body: text in", where);
  }
});

test("a browser's CORS preflight is answered by the app's OPTIONS route", async (t, server) => {
  const preflight = await fetch(`${server.siteUrl}/cors`, {
    method: "OPTIONS",
    headers: {
      Origin: "https://app.example",
      "Access-Control-Request-Method": "POST",
      "Access-Control-Request-Headers": "content-type, x-custom",
    },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "https://app.example");
  assert.equal(preflight.headers.get("access-control-allow-methods"), "POST, OPTIONS");
  assert.equal(preflight.headers.get("access-control-allow-headers"), "Content-Type, X-Custom");
  assert.equal(preflight.headers.get("access-control-max-age"), "86400");
  const res = await fetch(`${server.siteUrl}/cors`, { method: "POST", headers: { Origin: "https://app.example" }, body: "{}" });
  assert.equal(res.headers.get("access-control-allow-origin"), "https://app.example");
  assert.equal(await res.text(), "cors ok");
});

test("a binary body round-trips byte for byte", async (t, server) => {
  const bytes = new Uint8Array(256 * 1024);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7 + (i >> 8)) & 0xff;
  const res = await fetch(`${server.siteUrl}/binary`, { method: "POST", body: bytes });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("x-length"), String(bytes.length));
  const back = new Uint8Array(await res.arrayBuffer());
  assert.deepEqual(Buffer.from(back), Buffer.from(bytes.slice().reverse()));
});

test("auth: no identity without credentials; unverifiable credentials make getUserIdentity fail", async (t, server) => {
  assert.deepEqual(await (await fetch(`${server.siteUrl}/identity`)).json(), { identity: null });
  const res = await fetch(`${server.siteUrl}/identity`, { headers: { Authorization: "Bearer not-a-token" } });
  assert.deepEqual(await res.json(), { identity: "error" });
});

test("a thrown Error answers 500 with Convex's code and mapped trace", async (t, server) => {
  for (const [where, base] of bases(server)) {
    const res = await fetch(`${base}/fail`);
    assert.equal(res.status, 500, where);
    const body = await res.json();
    assert.match(body.code, new RegExp(`^${REQUEST_ID}Uncaught Error: ErrMsg$`), where);
    assert.match(body.trace, /^Uncaught Error: ErrMsg\n {4}at <anonymous> \(\.\.\/functions-\d+\/http\.ts:\d+:\d+\)/, where);
    assert.equal(body.data, undefined, where);
  }
});

test("a thrown ConvexError answers 500 with its data", async (t, server) => {
  const res = await fetch(`${server.siteUrl}/fail-convex`);
  assert.equal(res.status, 500);
  const body = await res.json();
  assert.match(body.code, new RegExp(`^${REQUEST_ID}Uncaught ConvexError: Hello world!$`));
  assert.equal(body.data, "Hello world!");
});

test("a handler past the action time limit answers 500 with the timeout error; others go on", async (t, server) => {
  const spinning = fetch(`${server.siteUrl}/spin`);
  assert.equal((await fetch(`${server.siteUrl}/files/during`)).status, 200);
  const res = await spinning;
  assert.equal(res.status, 500);
  const body = await res.json();
  assert.match(body.code, new RegExp(`^${REQUEST_ID}Function execution timed out`));
  assert.equal(await (await fetch(`${server.siteUrl}/hello`)).json().then((b) => b.pathname), "/hello");
});

test("a body over 20 MiB is refused with 413; the server goes on", async (t, server) => {
  for (const [where, base] of bases(server)) {
    const res = await fetch(`${base}/binary`, { method: "POST", body: new Uint8Array((20 << 20) + 1) });
    assert.equal(res.status, 413, where);
    assert.match(await res.text(), /at most 20971520 bytes/, where);
  }
  const exactly = await fetch(`${server.siteUrl}/binary`, { method: "POST", body: new Uint8Array(20 << 20) });
  assert.equal(exactly.status, 200);
  assert.equal(exactly.headers.get("x-length"), String(20 << 20));
  await exactly.arrayBuffer();
});
