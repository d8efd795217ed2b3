// The CLI against a running server: staged indexes, schema changes on redeploy
// (refused when existing documents violate them, index backfill), `convect run`, and
// `convect import` (idempotent upserts, single-record edits, bad records).
import assert from "node:assert/strict";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { describe } from "node:test";
import { REPO, useServer } from "./harness.mjs";
import { api, compareUtf8, rejects, seedFiles } from "./support.mjs";

describe("staged indexes", () => {
  const srv = useServer((server) => server.deploy("staged"));

  srv.test("cannot be read until enabled, with Convex's message", async (t, server) => {
    await rejects(
      server.client().query(api.drafts.byName, { name: "x" }),
      "Index drafts.by_name is currently staged and not available to query until it is enabled",
    );
  });
});

describe("schema changes on redeploy", () => {
  const srv = useServer((server) => server.deploy("notes"));
  const test = srv.test;

  test("a schema violated by stored documents is refused; the old deployment keeps serving", async (t, server) => {
    const client = server.client();
    const put = (doc) => client.mutation(api.drafts.put, { doc });
    await put({ title: "first" });
    const badId = await put({ title: 42 });
    await put({ title: "third" });

    const result = await server.deploy("notes", { overlays: ["notes-strict"], check: false });
    assert.notEqual(result.code, 0, result.output);
    assert.match(result.output, /drafts/);
    assert.ok(result.output.includes(badId), `should name ${badId}:\n${result.output}`);

    // Nothing of the refused deployment went live, the old one still works.
    await assert.rejects(client.query(api.extra.hello, {}));
    const drafts = await client.query(api.drafts.list, {});
    assert.equal(drafts.length, 3);
    assert.ok(drafts.some((d) => d._id === badId));
    await put({ untitled: true }); // the old schema still accepts anything
  });

  test("adding an index backfills it with existing documents", async (t, server) => {
    const client = server.client();
    for (const priority of [5, 1, 9, 3, 7]) {
      await client.mutation(api.notes.add, { text: `p${priority}`, priority });
    }
    const before = await client.query(api.notes.list, {});
    await server.deploy("notes", { overlays: ["notes-indexed"] });

    const expected = before
      .filter((note) => note.priority >= 4)
      .sort((a, b) => a.priority - b.priority);
    assert.equal(expected.length, 3);
    assert.deepStrictEqual(await client.query(api.byPriority.atLeast, { min: 4 }), expected);

    const id = await client.mutation(api.notes.add, { text: "p6", priority: 6 });
    const after = await client.query(api.byPriority.atLeast, { min: 4 });
    assert.deepStrictEqual(
      after.map((note) => note.priority),
      [5, 6, 7, 9],
    );
    assert.equal(after[1]._id, id);
  });

  test("convect run prints the result as JSON", async (t, server) => {
    const client = server.client();
    const count = (await client.query(api.notes.list, {})).length;
    // notes:count is internal: the admin key may call it. This test passes
    // --url / --admin-key as flags (the harness otherwise uses env vars).
    const flags = server.adminFlags();
    const counted = await server.cli(["run", "notes:count", ...flags]);
    assert.equal(JSON.parse(counted.stdout.trim()), count);

    const note = { text: "from the cli", priority: 42 };
    const added = await server.cli(["run", "notes:add", JSON.stringify(note), ...flags]);
    const id = JSON.parse(added.stdout.trim());
    const notes = await client.query(api.notes.list, {});
    assert.deepStrictEqual(
      notes.filter((n) => n._id === id).map(({ text, priority }) => ({ text, priority })),
      [note],
    );

    const missing = await server.cli(["run", "notes:nope", ...flags], { check: false });
    assert.notEqual(missing.code, 0);
    assert.match(missing.output, /notes:nope/);
  });
});

describe("convect import", () => {
  const srv = useServer((server) => server.deploy(path.join(REPO, "functions")));
  const test = srv.test;

  const importFiles = (server, files, check = true) =>
    server.importTable("advisors", files, { upsertBy: "legacyId", check });
  const list = (server) => server.client().query(api.advisors.list, {});

  // "3 inserted", "0 updated" (or "inserted: 3") in the importer's summary;
  // a run that changed nothing may say so instead of printing counts.
  function counts(output) {
    if (!/\d+\s+inserted|inserted\W{0,3}\d+/i.test(output) && /nothing changed/i.test(output)) {
      return { inserted: 0, updated: 0 };
    }
    const count = (word) => {
      const m = output.match(new RegExp(`(\\d+)\\s+${word}|${word}\\W{0,3}(\\d+)`, "i"));
      assert.ok(m, `no "${word}" count in:\n${output}`);
      return Number(m[1] ?? m[2]);
    };
    return { inserted: count("inserted"), updated: count("updated") };
  }

  test("importing the seeds twice is idempotent", async (t, server) => {
    const { files, records } = await seedFiles();
    assert.ok(files.length >= 5);
    const first = await importFiles(server, files);
    assert.deepStrictEqual(counts(first.output), { inserted: files.length, updated: 0 });

    const imported = await list(server);
    assert.deepStrictEqual(
      imported.map(({ _id, _creationTime, ...fields }) => fields),
      records.slice().sort((a, b) => compareUtf8(a.name, b.name)),
    );

    const second = await importFiles(server, files);
    assert.deepStrictEqual(counts(second.output), { inserted: 0, updated: 0 });
    assert.deepStrictEqual(await list(server), imported);
  });

  test("editing one record updates only that document", async (t, server) => {
    const dir = path.join(server.work, "seeds-edited");
    await mkdir(dir, { recursive: true });
    const files = [];
    let edited;
    const seeds = await seedFiles();
    for (const [i, record] of seeds.records.entries()) {
      if (record.legacyId === "advisor-historian") {
        record.title = "Historian (edited)";
        edited = record;
      }
      const copy = path.join(dir, path.basename(seeds.files[i]));
      await writeFile(copy, JSON.stringify(record, null, 2));
      files.push(copy);
    }
    assert.ok(edited, "seeds lack advisor-historian");
    const before = await list(server);
    const result = await importFiles(server, files);
    assert.deepStrictEqual(counts(result.output), { inserted: 0, updated: 1 });

    const after = await list(server);
    assert.equal(after.length, before.length);
    for (const doc of before) {
      const now = after.find((d) => d._id === doc._id);
      const expected = doc.legacyId === edited.legacyId ? { ...doc, title: edited.title } : doc;
      assert.deepStrictEqual(now, expected);
    }
  });

  test("a bad record names its file and line and nothing is imported", async (t, server) => {
    const dir = path.join(server.work, "bad-imports");
    await mkdir(dir, { recursive: true });
    const advisor = (i) => ({
      legacyId: `advisor-new-${i}`,
      name: `New Advisor ${i}`,
      title: "Temporary",
      expertise: ["testing"],
      persona: "You exist only during a test.",
    });
    const good = path.join(dir, "good.json");
    await writeFile(good, JSON.stringify(advisor(0)));
    const invalid = path.join(dir, "invalid.jsonl");
    await writeFile(
      invalid,
      [advisor(1), advisor(2), { ...advisor(3), name: 42 }].map((r) => JSON.stringify(r)).join("\n"),
    );
    const broken = path.join(dir, "broken.jsonl");
    await writeFile(broken, `${JSON.stringify(advisor(4))}\n{"name": "half a rec\n`);

    const before = await list(server);
    for (const [file, line] of [[invalid, 3], [broken, 2]]) {
      const result = await importFiles(server, [good, file], false);
      assert.notEqual(result.code, 0, result.output);
      assert.ok(result.output.includes(path.basename(file)), result.output);
      assert.match(result.output, new RegExp(`line\\s*${line}\\b|:${line}\\b`, "i"));
      assert.deepStrictEqual(await list(server), before);
    }
  });
});
