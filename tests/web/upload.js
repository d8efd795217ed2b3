// The page of tests/file_storage_browser.test.mjs, with plain convex/browser:
// a file chosen in the input is uploaded through a URL from
// files:generateUploadUrl, and every stored file (files:listWithUrls, a live
// query) is shown as an <img>. The Convect URL comes from ?convex=URL.
import { ConvexClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";

const client = new ConvexClient(new URLSearchParams(window.location.search).get("convex"));
const generateUploadUrl = makeFunctionReference("files:generateUploadUrl");
const listWithUrls = makeFunctionReference("files:listWithUrls");

const input = document.getElementById("file");
const status = document.getElementById("status");
const list = document.getElementById("files");

function showError(error) {
  let p = document.getElementById("error");
  if (!p) {
    p = document.createElement("p");
    p.id = "error";
    document.body.append(p);
  }
  p.textContent = String(error);
}

input.addEventListener("change", async () => {
  const file = input.files[0];
  if (!file) return;
  status.textContent = `Uploading ${file.name}…`;
  try {
    const url = await client.mutation(generateUploadUrl, {});
    const res = await fetch(url, { method: "POST", headers: { "Content-Type": file.type }, body: file });
    const text = await res.text();
    if (!res.ok) throw new Error(`the upload answered ${res.status}: ${text}`);
    const { storageId } = JSON.parse(text);
    status.textContent = `Uploaded ${storageId}`;
    status.dataset.storageId = storageId;
  } catch (error) {
    showError(error);
  }
  input.value = "";
});

// One <li> per file, kept while the file exists so that its image loads once.
client.onUpdate(
  listWithUrls,
  {},
  (files) => {
    const existing = new Map([...list.children].map((li) => [li.dataset.id, li]));
    list.replaceChildren(
      ...files.map((file) => {
        const kept = existing.get(file._id);
        if (kept) return kept;
        const li = document.createElement("li");
        li.dataset.id = file._id;
        const img = document.createElement("img");
        img.src = file.url;
        img.alt = file._id;
        const caption = document.createElement("span");
        caption.textContent = `${file.contentType ?? "no type"}, ${file.size} bytes`;
        li.append(img, caption);
        return li;
      }),
    );
    list.dataset.loaded = "true";
  },
  showError,
);
