// `convect codegen` output type-checks real function folders with tsc:
// Convect's own functions/ and the test fixtures (with their schema
// variants); types.probe.ts in the app fixture also proves the generated
// types are precise (its @ts-expect-error lines must all be errors).
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import path from "node:path";
import { after, before, test } from "node:test";
import { makeWorkDir, prepareFunctions, REPO, runProcess } from "./harness.mjs";

const TSC = path.join(REPO, "node_modules", "typescript", "bin", "tsc");
let work;
before(async () => {
  work = await makeWorkDir();
});
after(async () => {
  if (process.env.CONVECT_KEEP_TMP !== "1") await rm(work, { recursive: true, force: true });
});

const projects = [
  ["functions/", path.join(REPO, "functions"), []],
  ["tests/fixtures/app", "app", []],
  ["tests/fixtures/notes + notes-indexed", "notes", ["notes-indexed"]],
  ["tests/fixtures/notes + notes-strict", "notes", ["notes-strict"]],
  ["tests/fixtures/scheduler + scheduler-crons-v1", "scheduler", ["scheduler-crons-v1"]],
  ["tests/fixtures/auth", "auth", []],
];

for (const [name, source, overlays] of projects) {
  test(`${name} type-checks against generated code`, { timeout: 120_000 }, async () => {
    const dir = await prepareFunctions(work, source, overlays);
    const result = await runProcess(process.execPath, [TSC, "--noEmit", "-p", dir]);
    assert.equal(result.code, 0, `tsc failed in ${dir}:\n${result.output}`);
  });
}
