// User authentication end to end, against a local OpenID Connect identity
// provider started by the test (node:http on 127.0.0.1: a discovery document
// and a JWKS of keys generated at test time, with request counts and key
// rotation) and the tests/fixtures/auth functions, whose auth.config.ts names
// that provider through the TEST_IDP_URL deployment variable. Tokens are
// signed by hand (node:crypto) and shaped like Clerk's Convex template.
//
// Covered: ctx.auth.getUserIdentity() over HTTP in queries, mutations,
// actions and an action's ctx.runQuery / ctx.runMutation (the exact
// identity: tokenIdentifier, subject, issuer, OIDC claims renamed, custom
// claims as they are), null for anonymous callers and scheduled functions;
// RS256 and ES256 keys; refused tokens (forged signature, alg "none", HS256
// keyed with the public key, wrong iss or aud, expired, not yet valid,
// unknown kid, malformed), each an HTTP 401 with a JSON {code, message} and
// never an anonymous call, and the 5 s clock leeway; how often the keys are
// fetched (one fetch for a burst of unknown kids, a refetch at most every
// 30 s) and key rotation; over the WebSocket (ConvexClient.setAuth), per-user
// live queries (shared between sessions of one user only, counted with the
// admin-only `GET /api/convect/metrics`), and a refused token making the
// client fetch a fresh one (forceRefreshToken) or give up.
import assert from "node:assert/strict";
import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import http from "node:http";
import WebSocket from "ws";
import { useServer } from "./harness.mjs";
import { connect } from "./sockets.mjs";
import { api, recordUpdates, rejects, subscriptionExecutions, uniqueName, waitFor } from "./support.mjs";

const WAIT_MS = 15_000;
/** The server refetches a provider's keys at most this often. */
const REFETCH_INTERVAL_MS = 30_000;
const APPLICATION_ID = "convex";

const srv = useServer();
const test = srv.test;

const until = (predicate, what, timeoutMs = WAIT_MS) =>
  waitFor(predicate, timeoutMs, what);

const nowSeconds = () => Math.floor(Date.now() / 1000);

const base64url = (value) =>
  Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** A signing key pair with its public JWK ("RS256": RSA 2048, "ES256": P-256). */
function makeKey(alg, kid = uniqueName(`kid-${alg}`)) {
  const { privateKey, publicKey } =
    alg === "RS256"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 })
      : generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...publicKey.export({ format: "jwk" }), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicKey, jwk };
}

/** header.payload.signature; ES256 signatures are raw r||s (JWS), not DER. */
function signJwt(header, payload, privateKey, { dsaEncoding = "ieee-p1363" } = {}) {
  const input = `${base64url(header)}.${base64url(payload)}`;
  const key = header.alg === "ES256" ? { key: privateKey, dsaEncoding } : privateKey;
  return `${input}.${sign("sha256", Buffer.from(input), key).toString("base64url")}`;
}

/**
 * An OpenID Connect issuer: `/.well-known/openid-configuration` and `/jwks`,
 * recording when each was fetched. `rotate()` publishes a new key and
 * optionally withdraws the old ones.
 */
class IdentityProvider {
  static async start(t) {
    const idp = new IdentityProvider();
    idp.http = http.createServer((req, res) => idp.handle(req, res));
    await new Promise((resolve, reject) => {
      idp.http.once("error", reject);
      idp.http.listen(0, "127.0.0.1", resolve);
    });
    idp.url = `http://127.0.0.1:${idp.http.address().port}`;
    t.after(() => idp.close());
    return idp;
  }

  constructor() {
    this.keys = [makeKey("RS256")];
    this.fetches = { discovery: [], jwks: [], other: [] };
  }

  /** The newest RS256 key. */
  get current() {
    return this.keys.findLast((key) => key.alg === "RS256");
  }

  counts() {
    const { discovery, jwks, other } = this.fetches;
    return { discovery: discovery.length, jwks: jwks.length, other: other.length };
  }

  handle(req, res) {
    const { pathname } = new URL(req.url, this.url);
    const reply = (status, body) => {
      res.writeHead(status, { "Content-Type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && pathname === "/.well-known/openid-configuration") {
      this.fetches.discovery.push(Date.now());
      reply(200, {
        issuer: this.url,
        jwks_uri: `${this.url}/jwks`,
        authorization_endpoint: `${this.url}/authorize`,
        response_types_supported: ["code"],
        subject_types_supported: ["public"],
        id_token_signing_alg_values_supported: ["RS256", "ES256"],
      });
    } else if (req.method === "GET" && pathname === "/jwks") {
      this.fetches.jwks.push(Date.now());
      reply(200, { keys: this.keys.map((key) => key.jwk) });
    } else {
      this.fetches.other.push(`${req.method} ${req.url}`);
      reply(404, { error: "not found" });
    }
  }

  addKey(alg) {
    const key = makeKey(alg);
    this.keys.push(key);
    return key;
  }

  /** Publishes a new RS256 key; with dropOld, withdraws every other key. */
  rotate({ dropOld = false } = {}) {
    const key = makeKey("RS256");
    this.keys = dropOld ? [key] : [...this.keys, key];
    return key;
  }

  /**
   * A token for `user` as Clerk's Convex template shapes it; `claims`
   * override the payload (undefined removes a claim), `header` the header.
   */
  token(user, { key = this.current, claims = {}, header = {} } = {}) {
    const now = nowSeconds();
    const payload = {
      iss: this.url,
      aud: APPLICATION_ID,
      iat: now,
      nbf: now - 10,
      exp: now + 3600,
      ...user.claims,
      ...claims,
    };
    return signJwt({ alg: key.alg, typ: "JWT", kid: key.kid, ...header }, payload, key.privateKey);
  }

  /** What getUserIdentity() must answer for `user`'s tokens. */
  identity(user) {
    const { sub, name, given_name, family_name, email, email_verified, picture, ...custom } = user.claims;
    const mapped = {
      name,
      givenName: given_name,
      familyName: family_name,
      email,
      emailVerified: email_verified,
      pictureUrl: picture,
    };
    for (const field of Object.keys(mapped)) if (mapped[field] === undefined) delete mapped[field];
    return {
      tokenIdentifier: `${this.url}|${sub}`,
      subject: sub,
      issuer: this.url,
      ...mapped,
      ...custom,
    };
  }

  async close() {
    this.http.closeAllConnections();
    await new Promise((resolve) => this.http.close(resolve));
  }
}

/** A user with Clerk-template claims and custom claims (org, plan). */
function makeUser(first, extra = {}) {
  const sub = uniqueName(`user_${first.toLowerCase()}`);
  return {
    sub,
    claims: {
      sub,
      name: `${first} Example`,
      given_name: first,
      family_name: "Example",
      email: `${sub}@example.com`,
      email_verified: true,
      picture: `https://img.example.com/${sub}.png`,
      org: { id: "org_2fk", role: "admin" },
      plan: "pro",
      ...extra,
    },
  };
}

/**
 * Starts an identity provider and redeploys the fixture with it as the only
 * auth provider: a new deployment, so its keys are not cached yet.
 */
async function freshProvider(t, server) {
  const idp = await IdentityProvider.start(t);
  await server.setEnv("TEST_IDP_URL", idp.url);
  await server.deploy("auth");
  assert.deepEqual(idp.counts(), { discovery: 0, jwks: 0, other: 0 }, "deploying fetches nothing");
  return idp;
}

/** A ConvexHttpClient sending `token` as `Authorization: Bearer`. */
function httpAs(server, token) {
  const client = server.client();
  if (token !== undefined) client.setAuth(token);
  return client;
}

/** POST /api/{kind} as ConvexHttpClient sends it; the raw status, type and body. */
async function rawCall(server, kind, path, args, token) {
  const res = await fetch(`${server.url}/api/${kind}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify({ path, format: "convex_encoded_json", args: [args] }),
  });
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}

/**
 * `token` is refused: `POST /api/query` answers 401 with exactly {code,
 * message} as JSON, and ConvexHttpClient throws that JSON text. Returns the body.
 */
async function assertRefused(server, token, code, message) {
  const res = await rawCall(server, "query", "identity:whoami", {}, token);
  assert.equal(res.status, 401, `expected 401, got ${res.status}: ${res.text}`);
  assert.match(res.type, /^application\/json/);
  const body = JSON.parse(res.text);
  assert.deepEqual(Object.keys(body).sort(), ["code", "message"], res.text);
  assert.equal(body.code, code, res.text);
  assert.match(body.message, message);
  const error = await rejects(httpAs(server, token).query(api.identity.whoami, {}));
  assert.deepEqual(JSON.parse(error.message), body);
  return body;
}



/** ConvexClient.setAuth with a recording fetchToken; `tokens(n)` answers call n (1-based). */
function signIn(client, tokens) {
  const auth = { calls: [], changes: [] };
  client.setAuth(
    async (args) => {
      auth.calls.push(args);
      return tokens(auth.calls.length);
    },
    (isAuthenticated) => auth.changes.push(isAuthenticated),
  );
  return auth;
}

test("the identity reaches queries, mutations, actions and nested calls over HTTP", async (t, server) => {
  const idp = await freshProvider(t, server);
  const alice = makeUser("Alice");
  const expected = idp.identity(alice);
  // The expectation spelled out once: renamed OIDC claims, custom ones as they
  // are, and none of iss/sub/aud/iat/nbf/exp.
  assert.deepEqual(expected, {
    tokenIdentifier: `${idp.url}|${alice.sub}`,
    subject: alice.sub,
    issuer: idp.url,
    name: "Alice Example",
    givenName: "Alice",
    familyName: "Example",
    email: `${alice.sub}@example.com`,
    emailVerified: true,
    pictureUrl: `https://img.example.com/${alice.sub}.png`,
    org: { id: "org_2fk", role: "admin" },
    plan: "pro",
  });

  const client = httpAs(server, idp.token(alice));
  assert.deepEqual(await client.query(api.identity.whoami, {}), expected);
  // consistentQuery: /api/query_ts, then /api/query_at_ts with the token.
  assert.deepEqual(await client.consistentQuery(api.identity.whoami, {}), expected);
  assert.deepEqual(await client.mutation(api.identity.whoamiMutation, {}), expected);
  assert.deepEqual(await client.action(api.identity.whoamiAction, {}), {
    identity: expected,
    viaRunQuery: expected,
    viaRunMutation: expected,
  });
  // One discovery and one JWKS fetch served all of them.
  assert.deepEqual(idp.counts(), { discovery: 1, jwks: 1, other: 0 });

  // A token with only the required claims: nothing but the three fixed fields.
  const bare = { sub: uniqueName("user_bare") };
  assert.deepEqual(await httpAs(server, idp.token({ claims: bare })).query(api.identity.whoami, {}), {
    tokenIdentifier: `${idp.url}|${bare.sub}`,
    subject: bare.sub,
    issuer: idp.url,
  });

  // Anonymous callers get null everywhere, and cannot send.
  const anonymous = server.client();
  assert.equal(await anonymous.query(api.identity.whoami, {}), null);
  assert.equal(await anonymous.mutation(api.identity.whoamiMutation, {}), null);
  assert.deepEqual(await anonymous.action(api.identity.whoamiAction, {}), {
    identity: null,
    viaRunQuery: null,
    viaRunMutation: null,
  });
  await rejects(anonymous.mutation(api.messages.send, { text: "hi" }), "send: not signed in");
  assert.deepEqual(await anonymous.query(api.messages.mine, {}), []);

  // A function scheduled by a signed-in user runs with no identity.
  const tag = uniqueName("sched");
  assert.deepEqual(await client.mutation(api.identity.scheduleWhoami, { tag }), expected);
  await until(
    async () => (await anonymous.query(api.identity.recorded, { tag })).length > 0,
    "the scheduled mutation to run",
  );
  assert.deepEqual(await anonymous.query(api.identity.recorded, { tag }), [null]);

  // The user's own data: written and read under the token's identity.
  await client.mutation(api.messages.send, { text: "from alice" });
  assert.deepEqual(await client.query(api.messages.mine, {}), ["from alice"]);
  assert.deepEqual(await anonymous.query(api.messages.mine, {}), []);
});

test("an OIDC provider's ES256 (P-256) key verifies tokens signed with it", async (t, server) => {
  const idp = await freshProvider(t, server);
  const ec = idp.addKey("ES256");
  const user = makeUser("Erin");
  const token = idp.token(user, { key: ec });
  assert.deepEqual(await httpAs(server, token).query(api.identity.whoami, {}), idp.identity(user));
  // The RS256 key of the same JWKS still works beside it.
  assert.deepEqual(await httpAs(server, idp.token(user)).query(api.identity.whoami, {}), idp.identity(user));
  // A DER-encoded ECDSA signature (what node:crypto gives by default) is not a JWS signature.
  const now = nowSeconds();
  const der = signJwt(
    { alg: "ES256", typ: "JWT", kid: ec.kid },
    { iss: idp.url, aud: APPLICATION_ID, iat: now, exp: now + 3600, sub: user.sub },
    ec.privateKey,
    { dsaEncoding: "der" },
  );
  await assertRefused(server, der, "InvalidAuthHeader", /signature is invalid/);
  // So is an ES256 token naming the RSA key's kid.
  await assertRefused(
    server,
    signJwt({ alg: "ES256", typ: "JWT", kid: idp.current.kid }, { iss: idp.url, aud: APPLICATION_ID, iat: now, exp: now + 3600, sub: user.sub }, ec.privateKey),
    "InvalidAuthHeader",
    new RegExp(`'kid' \\(key ID\\) header is '${idp.current.kid}'`),
  );
  assert.deepEqual(idp.counts(), { discovery: 1, jwks: 1, other: 0 });
});

test("bad tokens are refused over HTTP with 401 and a JSON code, never run anonymously", async (t, server) => {
  const idp = await freshProvider(t, server);
  const mallory = makeUser("Mallory");
  const now = nowSeconds();

  // 1. Unknown kids, first of all on a cold cache: the first one fetches the
  // keys (discovery and JWKS, once each), a second one right after fetches
  // nothing, and a good token is then served from the cache.
  for (const kid of ["kid-unknown-1", "kid-unknown-2"]) {
    await assertRefused(
      server,
      idp.token(mallory, { header: { kid } }),
      "InvalidAuthHeader",
      new RegExp(`'kid' \\(key ID\\) header is '${kid}', does this key match any key in the provider's JWKS\\?`),
    );
    assert.deepEqual(idp.counts(), { discovery: 1, jwks: 1, other: 0 }, `after ${kid}`);
  }
  assert.deepEqual(await httpAs(server, idp.token(mallory)).query(api.identity.whoami, {}), idp.identity(mallory));
  assert.deepEqual(idp.counts(), { discovery: 1, jwks: 1, other: 0 });

  // 2. Signature and algorithm.
  const impostor = makeKey("RS256", idp.current.kid);
  const forged = idp.token(mallory, { key: impostor });
  await assertRefused(server, forged, "InvalidAuthHeader", /The JWT signature is invalid/);
  const [header, payload] = idp.token(mallory).split(".");
  await assertRefused(server, `${header}.${payload}.`, "InvalidAuthHeader", /signature is invalid/);

  const none = `${base64url({ alg: "none", typ: "JWT", kid: idp.current.kid })}.${payload}.`;
  await assertRefused(server, none, "InvalidAuthHeader", /'alg' header is 'none'/);

  const pem = idp.current.publicKey.export({ type: "spki", format: "pem" });
  const hsInput = `${base64url({ alg: "HS256", typ: "JWT", kid: idp.current.kid })}.${payload}`;
  const hs256 = `${hsInput}.${createHmac("sha256", pem).update(hsInput).digest("base64url")}`;
  await assertRefused(server, hs256, "InvalidAuthHeader", /'alg' header is 'HS256'/);

  // 3. Issuer and audience: no configured provider claims the token.
  const noProvider = /No auth provider found matching the given token/;
  await assertRefused(server, idp.token(mallory, { claims: { iss: "https://elsewhere.example" } }), "NoAuthProvider", noProvider);
  await assertRefused(server, idp.token(mallory, { claims: { iss: `${idp.url}/tenant` } }), "NoAuthProvider", noProvider);
  await assertRefused(server, idp.token(mallory, { claims: { aud: "another-app" } }), "NoAuthProvider", noProvider);
  await assertRefused(server, idp.token(mallory, { claims: { aud: undefined } }), "NoAuthProvider", noProvider);
  // `aud` as an array containing the application ID is accepted.
  assert.deepEqual(
    await httpAs(server, idp.token(mallory, { claims: { aud: ["other", APPLICATION_ID] } })).query(api.identity.whoami, {}),
    idp.identity(mallory),
  );

  // 4. Times, with Convex's 5 s leeway.
  await assertRefused(server, idp.token(mallory, { claims: { iat: now - 3600, nbf: now - 3600, exp: now - 60 } }), "InvalidAuthHeader", /Token expired \d+ seconds ago/);
  await assertRefused(server, idp.token(mallory, { claims: { nbf: now + 60 } }), "InvalidAuthHeader", /Token will be valid in \d+ seconds \(its 'nbf' claim/);
  await assertRefused(server, idp.token(mallory, { claims: { iat: now + 60, nbf: undefined } }), "InvalidAuthHeader", /Token will be valid in \d+ seconds \(its 'iat' claim/);
  await assertRefused(server, idp.token(mallory, { claims: { exp: undefined } }), "InvalidAuthHeader", /Missing 'exp' claim/);
  const withinLeeway = idp.token(mallory, { claims: { exp: nowSeconds() - 2, nbf: nowSeconds() + 2 } });
  assert.deepEqual(await httpAs(server, withinLeeway).query(api.identity.whoami, {}), idp.identity(mallory));

  // 5. Not a JWT at all.
  const malformed = /Could not parse JWT payload/;
  for (const token of ["not.a.jwt", "abc", "a.b", `${header}.${payload}.sig.extra`]) {
    await assertRefused(server, token, "InvalidAuthHeader", malformed);
  }
  await assertRefused(server, `${base64url({ alg: "RS256", kid: idp.current.kid })}.${base64url({ aud: APPLICATION_ID, sub: "x" })}.c2ln`, "InvalidAuthHeader", /Missing issuer claim \('iss'\)/);

  // 6. A refused token is refused for every kind of call: nothing runs, nothing is written.
  for (const [kind, path, args] of [
    ["mutation", "messages:send", { text: "forged" }],
    ["action", "identity:whoamiAction", {}],
  ]) {
    const res = await rawCall(server, kind, path, args, forged);
    assert.equal(res.status, 401, `${kind}: ${res.status} ${res.text}`);
    assert.equal(JSON.parse(res.text).code, "InvalidAuthHeader");
  }
  const run = await fetch(`${server.url}/api/run/identity/whoami`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${forged}` },
    body: JSON.stringify({ args: {}, format: "json" }),
  });
  const runBody = await run.text();
  assert.equal(run.status, 401, `/api/run: ${run.status} ${runBody}`);
  assert.equal(JSON.parse(runBody).code, "InvalidAuthHeader");
  await rejects(httpAs(server, forged).mutation(api.messages.send, { text: "forged" }), '"code":"InvalidAuthHeader"');
  await rejects(httpAs(server, forged).action(api.identity.whoamiAction, {}), '"code":"InvalidAuthHeader"');
  assert.deepEqual(await httpAs(server, idp.token(mallory)).query(api.messages.mine, {}), []);

  // None of these fetched the keys again.
  assert.deepEqual(idp.counts(), { discovery: 1, jwks: 1, other: 0 });
});

test("key rotation: a new kid verifies after one refetch, at most one per 30 s", async (t, server) => {
  const idp = await freshProvider(t, server);
  const ursula = makeUser("Ursula");
  const expected = idp.identity(ursula);
  const oldKey = idp.current;
  const whoami = (token) => rawCall(server, "query", "identity:whoami", {}, token);

  assert.deepEqual(await httpAs(server, idp.token(ursula)).query(api.identity.whoami, {}), expected);
  assert.deepEqual(idp.counts(), { discovery: 1, jwks: 1, other: 0 });
  const firstFetch = idp.fetches.jwks[0];

  // The issuer rotates: a new key, the old one withdrawn.
  const newKey = idp.rotate({ dropOld: true });
  const newToken = idp.token(ursula, { key: newKey });
  const oldToken = idp.token(ursula, { key: oldKey });
  // Within 30 s of the last fetch the new kid is not looked up, and the
  // cached old key still verifies.
  await assertRefused(server, newToken, "InvalidAuthHeader", new RegExp(`'kid' \\(key ID\\) header is '${newKey.kid}'`));
  assert.deepEqual(await httpAs(server, oldToken).query(api.identity.whoami, {}), expected);
  assert.ok(Date.now() - firstFetch < REFETCH_INTERVAL_MS, "the checks above ran within 30 s of the first fetch");
  assert.deepEqual(idp.counts(), { discovery: 1, jwks: 1, other: 0 });

  // Retried until it verifies: one refetch, about 30 s after the first fetch.
  let tries = 0;
  await until(
    async () => {
      tries++;
      return (await whoami(newToken)).status === 200;
    },
    "the new key to verify",
    REFETCH_INTERVAL_MS + 30_000,
  );
  assert.deepEqual(idp.counts(), { discovery: 2, jwks: 2, other: 0 }, `after ${tries} tries`);
  const sinceFirst = idp.fetches.jwks[1] - firstFetch;
  // The server counts whole seconds, so the refetch may come up to 1 s early.
  assert.ok(sinceFirst >= REFETCH_INTERVAL_MS - 1_500, `refetched after only ${sinceFirst} ms`);
  t.diagnostic(`the new kid verified on try ${tries}, ${sinceFirst} ms after the first fetch`);
  assert.deepEqual(await httpAs(server, newToken).query(api.identity.whoami, {}), expected);
  assert.deepEqual(await httpAs(server, newToken).mutation(api.identity.whoamiMutation, {}), expected);

  // The withdrawn key no longer verifies, and neither it nor another unknown
  // kid right after the refetch fetches again.
  await assertRefused(server, oldToken, "InvalidAuthHeader", new RegExp(`'kid' \\(key ID\\) header is '${oldKey.kid}'`));
  await assertRefused(server, idp.token(ursula, { header: { kid: "kid-never-published" } }), "InvalidAuthHeader", /kid-never-published/);
  assert.deepEqual(idp.counts(), { discovery: 2, jwks: 2, other: 0 });
}, {
  timeout: 120_000,
});

test("WebSocket sessions run as their users; live queries are per user", async (t, server) => {
  const idp = await freshProvider(t, server);
  const alice = makeUser("Alice");
  const bob = makeUser("Bob");
  const { client: a } = connect(t, server);
  const { client: a2 } = connect(t, server);
  const { client: b } = connect(t, server);
  const { client: anon } = connect(t, server);
  const aliceAuth = signIn(a, () => idp.token(alice));
  // A second session of Alice's, with a token minted separately.
  signIn(a2, () => idp.token(alice, { claims: { iat: nowSeconds() - 1 } }));
  const bobAuth = signIn(b, () => idp.token(bob));

  const aliceMine = recordUpdates(a, api.messages.mine, {});
  const alice2Mine = recordUpdates(a2, api.messages.mine, {});
  const bobMine = recordUpdates(b, api.messages.mine, {});
  const anonMine = recordUpdates(anon, api.messages.mine, {});
  const aliceWho = recordUpdates(a, api.identity.whoami, {});
  const bobWho = recordUpdates(b, api.identity.whoami, {});
  await until(
    () => aliceAuth.changes.includes(true) && bobAuth.changes.includes(true),
    "both sessions to be authenticated",
  );
  await until(() => aliceWho.latest() && bobWho.latest(), "both whoami results");
  assert.deepEqual(aliceWho.values, [idp.identity(alice)]);
  assert.deepEqual(bobWho.values, [idp.identity(bob)]);
  assert.deepEqual(await a.query(api.identity.whoami, {}), idp.identity(alice));
  assert.deepEqual(await a.action(api.identity.whoamiAction, {}), {
    identity: idp.identity(alice),
    viaRunQuery: idp.identity(alice),
    viaRunMutation: idp.identity(alice),
  });
  assert.equal(await anon.query(api.identity.whoami, {}), null);

  await a.mutation(api.messages.send, { text: "a1" });
  await until(() => aliceMine.latest()?.length === 1, "Alice to see a1");
  await b.mutation(api.messages.send, { text: "b1" });
  await until(() => bobMine.latest()?.length === 1, "Bob to see b1");
  await a.mutation(api.messages.send, { text: "a2" });
  await until(() => alice2Mine.latest()?.length === 2, "Alice's other session to see a2");
  // Last writes, one per user: each session's earlier updates arrived before them.
  await b.mutation(api.messages.send, { text: "b2" });
  await a.mutation(api.messages.send, { text: "a3" });
  await until(() => bobMine.latest()?.length === 2, "Bob to see b2");
  await until(
    () => aliceMine.latest()?.length === 3 && alice2Mine.latest()?.length === 3,
    "both of Alice's sessions to see a3",
  );
  assert.deepEqual(aliceMine.values, [[], ["a1"], ["a1", "a2"], ["a1", "a2", "a3"]]);
  assert.deepEqual(alice2Mine.latest(), ["a1", "a2", "a3"]);
  assert.deepEqual(bobMine.values, [[], ["b1"], ["b1", "b2"]]);
  assert.deepEqual(anonMine.values, [[]]);
  await rejects(anon.mutation(api.messages.send, { text: "anon" }), "send: not signed in");
  for (const rec of [aliceMine, alice2Mine, bobMine, anonMine, aliceWho, bobWho]) {
    assert.deepEqual(rec.errors, []);
  }
  // Over HTTP, the same users see the same lists.
  assert.deepEqual(await httpAs(server, idp.token(bob)).query(api.messages.mine, {}), ["b1", "b2"]);
  // convex-js asked for a token, then (once confirmed) a fresh one, which is the same.
  assert.deepEqual(aliceAuth.calls, [{ forceRefreshToken: false }, { forceRefreshToken: true }]);
  assert.deepEqual(aliceAuth.changes, [true]);
});

test("sessions of the same user share a subscription; different users never do", async (t, server) => {
  const idp = await freshProvider(t, server);
  const dave = makeUser("Dave");
  const erin = makeUser("Erin");
  const start = await subscriptionExecutions(server);
  const sessions = [dave, dave, dave, erin].map((user, i) => {
    const { client } = connect(t, server);
    // Each session of Dave's has a token of its own, with the same claims.
    const auth = signIn(client, () => idp.token(user, { claims: { iat: nowSeconds() - i } }));
    return { user, client, auth, mine: recordUpdates(client, api.messages.mine, {}) };
  });
  await until(
    () => sessions.every((s) => s.auth.changes.includes(true) && s.mine.values.length === 1),
    "four authenticated first results",
  );
  const subscribed = await subscriptionExecutions(server);
  assert.equal(subscribed - start, 2, "Dave's three sessions share one execution, Erin has her own");

  // Each write re-executes the two subscriptions (the query reads the whole
  // table), not one per session.
  await httpAs(server, idp.token(dave)).mutation(api.messages.send, { text: "d1" });
  await httpAs(server, idp.token(erin)).mutation(api.messages.send, { text: "e1" });
  await until(
    () => sessions.every((s) => s.mine.latest()?.length === 1),
    "every session to see its user's message",
  );
  assert.equal((await subscriptionExecutions(server)) - subscribed, 4, "two writes, two shared subscriptions");
  for (const s of sessions) {
    assert.deepEqual(s.mine.values, [[], [s.user === dave ? "d1" : "e1"]]);
    assert.deepEqual(s.mine.errors, []);
  }
});

test("a refused token over the WebSocket: AuthError, the client fetches a fresh token and goes on", async (t, server) => {
  const idp = await freshProvider(t, server);
  const carol = makeUser("Carol");
  const now = nowSeconds();
  const expired = idp.token(carol, { claims: { iat: now - 3600, nbf: now - 3600, exp: now - 60 } });
  const good = idp.token(carol);
  const { client, net } = connect(t, server);
  const auth = signIn(client, (n) => (n === 1 ? expired : good));
  const who = recordUpdates(client, api.identity.whoami, {});
  const mine = recordUpdates(client, api.messages.mine, {});

  await until(() => auth.changes.length > 0 && who.values.length > 0, "the client to authenticate");
  assert.deepEqual(auth.changes, [true]);
  assert.deepEqual(auth.calls, [{ forceRefreshToken: false }, { forceRefreshToken: true }]);
  assert.deepEqual(who.values, [idp.identity(carol)]);

  // On the wire: the expired token was answered with an AuthError and the
  // connection closed; the fresh token was accepted on the next one.
  const first = net.sockets[0];
  await first.closed;
  const authenticates = net.sockets.flatMap((s) => s.sent.filter((m) => m.type === "Authenticate"));
  assert.deepEqual(
    authenticates.map((m) => [m.tokenType, m.value]),
    [["User", expired], ["User", good]],
  );
  const authError = first.received.filter((m) => m.type !== "Ping").at(-1);
  assert.equal(authError.type, "AuthError", JSON.stringify(authError));
  assert.equal(authError.authUpdateAttempted, true);
  assert.match(authError.error, /Token expired \d+ seconds ago/);

  // The session works as Carol: her write shows in her live query.
  await client.mutation(api.messages.send, { text: "c1" });
  await until(() => mine.latest()?.length === 1, "Carol's message");
  assert.deepEqual(mine.values, [[], ["c1"]]);
  assert.deepEqual(auth.calls.length, 2, "no further token fetches");
});

test("a WebSocket client whose token is always refused ends up signed out", async (t, server) => {
  const idp = await freshProvider(t, server);
  const mallory = makeUser("Mallory");
  const forged = idp.token(mallory, { key: makeKey("RS256", idp.current.kid) });
  const { client, net } = connect(t, server);
  const auth = signIn(client, () => forged);
  const who = recordUpdates(client, api.identity.whoami, {});

  await until(() => auth.changes.length > 0, "the client to give up");
  assert.deepEqual(auth.changes, [false]);
  assert.deepEqual(auth.calls, [{ forceRefreshToken: false }, { forceRefreshToken: true }]);
  const authErrors = net.sockets.flatMap((s) => s.received.filter((m) => m.type === "AuthError"));
  assert.ok(authErrors.length >= 1);
  for (const m of authErrors) assert.match(m.error, /The JWT signature is invalid/);
  // Signed out, its queries run anonymously; they never ran as Mallory.
  await until(() => who.values.length > 0, "the anonymous whoami");
  assert.deepEqual(who.values, [null]);
  assert.equal(await client.query(api.identity.whoami, {}), null);
  await rejects(client.mutation(api.messages.send, { text: "x" }), "send: not signed in");
});

test("a session whose token expires gets an AuthError it did not ask for, and is closed", async (t, server) => {
  const idp = await freshProvider(t, server);
  const frank = makeUser("Frank");
  const token = idp.token(frank, { claims: { exp: nowSeconds() + 2 } });
  const socket = new WebSocket(`${server.url.replace("http", "ws")}/api/1.48.0/sync`);
  t.after(() => socket.close());
  const received = [];
  socket.addEventListener("message", (event) => received.push(JSON.parse(event.data)));
  const closed = new Promise((resolve) => socket.addEventListener("close", resolve));
  await new Promise((resolve) => socket.addEventListener("open", resolve));
  const connectMessage = { type: "Connect", sessionId: uniqueName("expiring"), connectionCount: 0, lastCloseReason: null, clientTs: 0 };
  socket.send(JSON.stringify(connectMessage));
  socket.send(JSON.stringify({ type: "Authenticate", tokenType: "User", baseVersion: 0, value: token }));
  const messages = () => received.filter((m) => m.type !== "Ping");
  await until(() => messages().length > 0, "the answer to Authenticate");
  assert.equal(messages()[0].type, "Transition", JSON.stringify(messages()[0]));
  // Past exp and the 5 s leeway, the server says so unprompted (convex-js
  // then fetches a fresh token) and ends the session.
  await until(() => messages().some((m) => m.type === "AuthError"), "the AuthError at expiry", 20_000);
  const authError = messages().find((m) => m.type === "AuthError");
  assert.deepEqual(authError, { type: "AuthError", error: "Token expired", baseVersion: 1, authUpdateAttempted: false });
  await closed;
});
