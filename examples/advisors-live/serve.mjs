// Serves the live advisors page: bundles app.jsx with esbuild and serves it on
// http://127.0.0.1:5173, pointed at the Convect server `convect dev` started
// (read from .convect/config.json, or CONVECT_URL).
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");

async function convexUrl() {
  if (process.env.CONVECT_URL) return process.env.CONVECT_URL;
  try {
    return JSON.parse(await readFile(path.join(root, ".convect/config.json"), "utf8")).url;
  } catch {
    return "http://127.0.0.1:3210";
  }
}

const bundle = await build({
  entryPoints: [path.join(here, "app.jsx")],
  bundle: true,
  write: false,
  format: "esm",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  minify: true,
});
const js = bundle.outputFiles[0].text;
const url = await convexUrl();
const page = `<!doctype html><meta charset="utf-8"><title>Advisors</title>
<style>body{font:16px system-ui;margin:2rem}li{margin:.3rem 0}.error{color:#b00}</style>
<div id="root"></div><script>window.CONVEX_URL=${JSON.stringify(url)}</script>
<script type="module" src="/app.js"></script>`;

const port = Number(process.env.PORT ?? 5173);
http
  .createServer((req, res) => {
    if (req.url === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(js);
    } else {
      res.writeHead(200, { "content-type": "text/html" }).end(page);
    }
  })
  .listen(port, "127.0.0.1", () => console.log(`Advisors page on http://127.0.0.1:${port} (Convect at ${url})`));
