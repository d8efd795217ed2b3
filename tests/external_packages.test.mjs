// convex.json's node.externalPackages, as in Convex's own integration suite: a
// "use node" bundle keeps its import of a listed package, the deploy reports the
// version installed in the project, and the server installs that version with
// npm (into <data>/node/packages/, linked as the bundle's node_modules) before
// loading the bundle, at deploy time.
import assert from "node:assert/strict";
import { readdir, readFile, readlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { useServer } from "./harness.mjs";
import { api } from "./support.mjs";

const srv = useServer();
const test = srv.test;

/** The deployed Node.js bundle's files: <data>/node/<key>/ (the one with our module). */
async function nodeBundleDir(server) {
  const root = path.join(server.dataDir, "node");
  for (const name of await readdir(root)) {
    const dir = path.join(root, name);
    const files = await readdir(dir).catch(() => []);
    if (files.includes("nodeEncoding.js")) return dir;
  }
  throw new Error(`no Node.js bundle in ${root}`);
}

test("a listed package is installed by the server, not bundled, and the action uses it", async (t, server) => {
  const dir = await server.prepare("external-packages");
  // convex.json sits in the project root, beside the functions folder; the
  // repository's package.json (above it) depends on base64-js 1.5.1.
  const config = { node: { externalPackages: ["base64-js"] } };
  await writeFile(path.join(path.dirname(dir), "convex.json"), JSON.stringify(config));
  const deployed = await server.cli(["deploy", dir], { admin: true });
  assert.match(deployed.output, /External packages for Node\.js, installed by the server: base64-js@1\.5\.1\n/);

  const bundle = await nodeBundleDir(server);
  const source = await readFile(path.join(bundle, "nodeEncoding.js"), "utf8");
  assert.match(source, /from "base64-js"/);
  // esbuild heads the code it bundles with its path; convex/values has its own
  // copy of base64-js's code, so the path is what tells them apart.
  assert.doesNotMatch(source, /node_modules\/base64-js\//);
  assert.match(await readlink(path.join(bundle, "node_modules")), /^\.\.\/packages\/[0-9a-f]+\/node_modules$/);

  const result = await server.client().action(api.nodeEncoding.encode, { text: "héllo ✓" });
  assert.equal(result.base64, Buffer.from("héllo ✓").toString("base64"));
  const installed = path.join(server.dataDir, "node", "packages");
  assert.ok(result.resolved.startsWith(installed + path.sep), `${result.resolved} is not below ${installed}`);
  const manifest = JSON.parse(await readFile(path.join(path.dirname(result.resolved), "package.json"), "utf8"));
  assert.equal(manifest.version, "1.5.1");
});
