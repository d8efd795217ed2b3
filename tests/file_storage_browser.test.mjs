// File storage from a browser page (tests/web/upload.js, plain convex/browser,
// fixture tests/fixtures/files) in Debian's chromium, driven by
// playwright-core: a PNG set on the page's file input is uploaded through a
// URL from generateUploadUrl (a cross-origin POST, as Convex apps do it), the
// page's live list of `_storage` files shows it as an <img> that loads from
// its storage URL, and when another client (ConvexHttpClient) deletes the
// file the image disappears without a reload. A screenshot is left in the
// server's work directory (kept with CONVECT_KEEP_TMP=1).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { deflateSync } from "node:zlib";
import { useServer } from "./harness.mjs";
import { api } from "./support.mjs";
import { openPage, servePage } from "./web/browser.mjs";

const WAIT_MS = 15_000;

const srv = useServer(async (server) => {
  await server.deploy("files");
});
const test = srv.test;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type, data) {
  const typed = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** A valid PNG of `rows` (arrays of [r, g, b] pixels), 8-bit RGB, unfiltered. */
function png(rows) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(rows[0].length, 0);
  header.writeUInt32BE(rows.length, 4);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, RGB, deflate, no filter, no interlace
  const raw = Buffer.concat(rows.map((row) => Buffer.from([0, ...row.flat()])));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", header),
    pngChunk("IDAT", deflateSync(raw)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

/** Waits for `predicate` in the page; a timeout reports the page's state and errors. */
async function waitOnPage(page, problems, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: WAIT_MS });
  } catch (err) {
    const state = await page
      .evaluate(() => ({
        status: document.querySelector("#status")?.textContent,
        error: document.querySelector("#error")?.textContent ?? null,
        files: document.querySelector("#files")?.innerHTML,
      }))
      .catch(() => "(unreadable)");
    throw new Error(
      `timed out waiting for ${what}; page: ${JSON.stringify(state)}; problems: ${JSON.stringify(problems)}: ${err.message}`,
    );
  }
}

test("a page uploads a PNG from a file input and follows the live list of files", async (t, server) => {
  const client = server.client();
  assert.deepEqual(await client.query(api.files.list, {}), []);
  const image = png([
    [
      [255, 0, 0],
      [0, 160, 0],
    ],
    [
      [0, 0, 255],
      [255, 255, 255],
    ],
  ]);

  const pageUrl = await servePage(t, "upload.html", "upload.js");
  const { page, problems } = await openPage(t);

  await page.goto(`${pageUrl}/?${new URLSearchParams({ convex: server.url })}`);
  await waitOnPage(page, problems, "the empty list", () => document.querySelector("#files")?.dataset.loaded === "true");
  assert.equal(await page.locator("#files li").count(), 0);

  await page.setInputFiles("#file", { name: "pixels.png", mimeType: "image/png", buffer: image });
  await waitOnPage(page, problems, "the uploaded image to load", () => {
    const images = document.querySelectorAll("#files img");
    return images.length === 1 && images[0].complete && images[0].naturalWidth === 2;
  });
  assert.equal(await page.$eval("#files img", (img) => img.naturalHeight), 2);

  // What the page uploaded is the file, with its type, at the storage URL.
  const storageId = await page.$eval("#status", (p) => p.dataset.storageId);
  const docs = await client.query(api.files.list, {});
  assert.equal(docs.length, 1);
  assert.deepEqual(docs[0], {
    _id: storageId,
    _creationTime: docs[0]._creationTime,
    sha256: createHash("sha256").update(image).digest("base64"),
    size: image.length,
    contentType: "image/png",
  });
  const src = await page.$eval("#files img", (img) => img.src);
  assert.equal(src, `${server.url}/api/storage/${storageId}`);
  assert.equal(src, await client.query(api.files.getUrl, { storageId }));
  assert.equal(await page.$eval("#files li span", (s) => s.textContent), `image/png, ${image.length} bytes`);

  const shot = path.join(server.work, "file-storage-page.png");
  await page.screenshot({ path: shot });
  t.diagnostic(`screenshot: ${shot}`);

  // Another client deletes the file: the image goes away without a reload.
  await client.mutation(api.files.remove, { storageId });
  await waitOnPage(page, problems, "the image to disappear", () => document.querySelectorAll("#files li").length === 0);
  assert.equal(await page.$("#error"), null, "the page reported an error");
  assert.deepEqual(problems, []);
});
