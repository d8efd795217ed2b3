// Bundles the React test page (app.jsx with react, react-dom and convex/react)
// with esbuild, in memory; tests/react.test.mjs serves the result. The file
// upload page (upload.js with convex/browser) is bundled the same way for
// tests/file_storage_browser.test.mjs.
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));

/** Resolves to { html, js } for the page. */
export async function buildPage() {
  const result = await build({
    entryPoints: [path.join(here, "app.jsx")],
    bundle: true,
    write: false,
    format: "esm",
    jsx: "automatic",
    target: "es2022",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  return {
    html: await readFile(path.join(here, "index.html"), "utf8"),
    js: result.outputFiles[0].text,
  };
}

/** Resolves to { html, js } for the file upload page (upload.html, upload.js). */
export async function buildUploadPage() {
  const result = await build({
    entryPoints: [path.join(here, "upload.js")],
    bundle: true,
    write: false,
    format: "esm",
    target: "es2022",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "silent",
  });
  return {
    html: await readFile(path.join(here, "upload.html"), "utf8"),
    js: result.outputFiles[0].text,
  };
}
