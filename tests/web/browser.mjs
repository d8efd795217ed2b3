// Test pages in Debian's chromium, driven by playwright-core: bundles a page's
// script with esbuild in memory (react.test.mjs: app.jsx with React and
// convex/react; file_storage_browser.test.mjs: upload.js with convex/browser),
// serves it on a free loopback port, and opens it in a headless browser that
// records the page's errors.
import assert from "node:assert/strict";
import { build } from "esbuild";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Bundles `script` (a file here, served at `/<its name with .js>`, where
 * `html` loads it) and serves both until the test ends; resolves to the URL.
 */
export async function servePage(t, html, script) {
  const result = await build({
    entryPoints: [path.join(here, script)],
    bundle: true,
    write: false,
    format: "esm",
    jsx: "automatic",
    target: "es2022",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  const page = await readFile(path.join(here, html), "utf8");
  const scriptPath = `/${path.basename(script, path.extname(script))}.js`;
  const web = http.createServer((req, res) => {
    const url = new URL(req.url, "http://page");
    if (url.pathname === scriptPath) {
      res.writeHead(200, { "content-type": "text/javascript" }).end(result.outputFiles[0].text);
    } else if (url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(page);
    } else if (url.pathname === "/favicon.ico") {
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve) => web.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise((resolve) => web.close(resolve)));
  return `http://127.0.0.1:${web.address().port}`;
}

/**
 * A new page in a headless chromium closed when the test ends, and `problems`:
 * the page's uncaught errors and console errors, which a test expects empty.
 */
export async function openPage(t) {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing (apt-get install chromium)`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 640, height: 400 } });
  const problems = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console error: ${msg.text()}`);
  });
  return { page, problems };
}
