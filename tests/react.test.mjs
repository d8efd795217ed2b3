// End-to-end test of a React page (tests/web/app.jsx: ConvexProvider,
// useQuery, useMutation) against Convect in Debian's chromium, driven by
// playwright-core: the page shows a live list, follows inserts made by other
// clients (ConvexHttpClient and `convect run`), and its button's mutation
// shows up in the list. A screenshot is left in the server's work directory
// (kept with CONVECT_KEEP_TMP=1).
import assert from "node:assert/strict";
import path from "node:path";
import { useServer } from "./harness.mjs";
import { api, uniqueName } from "./support.mjs";
import { openPage, servePage } from "./web/browser.mjs";

const WAIT_MS = 15_000;

const srv = useServer(async (server) => {
  await server.deploy("live");
});
const test = srv.test;

const listTexts = (page) =>
  page.$$eval("#messages li", (items) => items.map((li) => li.textContent));

/** Waits until the page's list is exactly `expected`. */
async function waitForList(page, expected) {
  try {
    await page.waitForFunction(
      (want) =>
        JSON.stringify([...document.querySelectorAll("#messages li")].map((li) => li.textContent)) ===
        want,
      JSON.stringify(expected),
      { timeout: WAIT_MS },
    );
  } catch (err) {
    const actual = await listTexts(page).catch(() => "(unreadable)");
    throw new Error(
      `the page's list is ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}: ${err.message}`,
    );
  }
}

test("a React page follows a live list and runs a mutation from a button", async (t, server) => {
  const channel = uniqueName("react");
  const client = server.client();
  await client.mutation(api.messages.send, { channel, body: "first" });

  const pageUrl = await servePage(t, "index.html", "app.jsx");
  const { page, problems } = await openPage(t);

  const query = new URLSearchParams({ convex: server.url, channel });
  await page.goto(`${pageUrl}/?${query}`);
  await waitForList(page, ["first"]);

  // Inserts by other clients appear without a reload.
  await client.mutation(api.messages.send, { channel, body: "from http" });
  await waitForList(page, ["first", "from http"]);
  await server.cli(
    ["run", "messages:send", JSON.stringify({ channel, body: "from cli" }), ...server.adminFlags()],
  );
  await waitForList(page, ["first", "from http", "from cli"]);

  // The page's own mutation: the list updates and the result (its position) shows.
  await page.click("#add");
  await waitForList(page, ["first", "from http", "from cli", "clicked 1"]);
  await page.waitForFunction(
    () => document.querySelector("#status")?.textContent === "4 messages; sent #4",
    null,
    { timeout: WAIT_MS },
  );
  await page.click("#add");
  await waitForList(page, ["first", "from http", "from cli", "clicked 1", "clicked 2"]);
  assert.deepEqual(await client.query(api.messages.list, { channel }), [
    "first",
    "from http",
    "from cli",
    "clicked 1",
    "clicked 2",
  ]);
  assert.equal(await page.$("#error"), null, "the page's mutation failed");

  const shot = path.join(server.work, "react-page.png");
  await page.screenshot({ path: shot });
  t.diagnostic(`screenshot: ${shot}`);
  assert.deepEqual(problems, []);
});
