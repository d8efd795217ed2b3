// Convect's own deployment (functions/) with the advisor seeds imported:
// list order and contents, get, create, update and remove, including the
// errors the advisors module raises (duplicate or blank names, unknown IDs).
import assert from "node:assert/strict";
import path from "node:path";
import { REPO, useServer } from "./harness.mjs";
import { api, compareUtf8, rejects, rejectsWithData, seedFiles } from "./support.mjs";

let seeds;
const srv = useServer(async (server) => {
  await server.deploy(path.join(REPO, "functions"));
  seeds = await seedFiles();
  await server.importTable("advisors", seeds.files, { upsertBy: "legacyId" });
});
const test = srv.test;

const fieldsOf = ({ _id, _creationTime, ...fields }) => fields;
const byName = (a, b) => compareUtf8(a.name, b.name);

const newAdvisor = {
  name: "Zora Test",
  title: "Quality Auditor",
  expertise: ["checklists", "audits"],
  persona: "You audit everything twice and say so.",
  avatar: "🔍",
};

test("list returns the imported seeds ordered by name", async (t, server) => {
  const list = await server.client().query(api.advisors.list, {});
  assert.deepStrictEqual(list.map(fieldsOf), seeds.records.slice().sort(byName));
});

test("get returns one advisor by id", async (t, server) => {
  const client = server.client();
  const [someone] = await client.query(api.advisors.list, {});
  assert.deepStrictEqual(await client.query(api.advisors.get, { id: someone._id }), someone);
});

test("create, update and remove", async (t, server) => {
  const client = server.client();
  const before = await client.query(api.advisors.list, {});
  const id = await client.mutation(api.advisors.create, newAdvisor);
  const created = await client.query(api.advisors.get, { id });
  assert.deepStrictEqual(fieldsOf(created), newAdvisor);
  assert.deepStrictEqual(
    await client.query(api.advisors.list, {}),
    [...before, created].sort(byName),
  );

  await client.mutation(api.advisors.update, { id, title: "Chief Auditor" });
  assert.deepStrictEqual(await client.query(api.advisors.get, { id }), {
    ...created,
    title: "Chief Auditor",
  });
  // Renaming to its own name is not a clash.
  await client.mutation(api.advisors.update, { id, name: newAdvisor.name });

  await client.mutation(api.advisors.remove, { id });
  assert.equal(await client.query(api.advisors.get, { id }), null);
  assert.deepStrictEqual(await client.query(api.advisors.list, {}), before);
  const notFound = { code: "NOT_FOUND", message: `No advisor ${id}` };
  await rejectsWithData(client.mutation(api.advisors.remove, { id }), notFound);
  await rejectsWithData(client.mutation(api.advisors.update, { id, title: "x" }), notFound);
});

test("names must be unique and non-blank; fields are validated", async (t, server) => {
  const client = server.client();
  const before = await client.query(api.advisors.list, {});
  const [first, second] = before;
  const taken = (name) => ({
    code: "NAME_TAKEN",
    message: `An advisor named "${name}" already exists`,
  });
  await rejectsWithData(
    client.mutation(api.advisors.create, { ...newAdvisor, name: first.name }),
    taken(first.name),
  );
  await rejectsWithData(
    client.mutation(api.advisors.update, { id: second._id, name: first.name }),
    taken(first.name),
  );
  await rejectsWithData(client.mutation(api.advisors.create, { ...newAdvisor, name: "  " }), {
    code: "INVALID",
    message: "Name is empty",
  });
  const { persona, ...withoutPersona } = newAdvisor;
  await rejects(client.mutation(api.advisors.create, withoutPersona), "persona");
  await rejects(
    client.mutation(api.advisors.create, { ...newAdvisor, expertise: "everything" }),
    "expertise",
  );
  assert.deepStrictEqual(await client.query(api.advisors.list, {}), before);
});
