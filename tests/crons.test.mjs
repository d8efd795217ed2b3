// Cron jobs end to end: convex/crons.ts default-exports cronJobs(), and the
// server runs each job on its schedule. The fixture tests/fixtures/scheduler
// holds the functions the jobs run (crons_fns.ts, each run inserts a row)
// and no crons.ts; the overlay folders tests/fixtures/scheduler-crons-v1 and
// -v2 each add a crons.ts whose job "tick" runs every second, v1 calling
// crons_fns.tick({tag: "v1"}) and v2 crons_fns.tock({tag: "v2", step: 2}).
// Covers: an interval job runs repeatedly with its arguments; a redeploy that
// changes the job runs the new function and arguments and stops the old;
// jobs keep running across a restart; a redeploy without crons.ts stops the
// job; and `convect crons` lists the jobs (in tests of their own, as the
// output format is the CLI's). The tests run in order on one server, each
// starting from the deployment the previous one left.
import assert from "node:assert/strict";
import { sleep, useServer } from "./harness.mjs";
import { api, waitFor } from "./support.mjs";

const srv = useServer((server) => server.deploy("scheduler", { overlays: ["scheduler-crons-v1"] }));
const test = srv.test;

/** How long a job due every second may take to run twice (slow CI included). */
const CRON_WAIT_MS = 15_000;

/** `every 1s`, `1 second`, `{"seconds":1}` and the like. */
const EVERY_SECOND = /\b1\s*(s|secs?|seconds?)\b|seconds\W{1,3}1\b|every\s+second\b/i;

/** A time as the CLI may print it: ISO 8601, integer ms, or relative ("3s ago", "in 1s"). */
const TIME = /\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\b1\d{12}\b|\b\d+(\.\d+)?\s*(ms|s|m|h)\s+ago\b|\bin\s+\d+(\.\d+)?\s*(ms|s|m|h)\b/g;

/** waitFor, whose timeout message `what()` describes the state at the time. */
async function until(predicate, what, timeoutMs = CRON_WAIT_MS) {
  try {
    await waitFor(predicate, timeoutMs, "");
  } catch (err) {
    if (err.message.startsWith("timed out waiting for")) err.message = `timed out waiting for ${what()}`;
    throw err;
  }
}

const rowsOf = (server, fn) => server.client().query(api.crons_fns.rows, { fn });

const counts = async (server) => ({
  tick: (await rowsOf(server, "tick")).length,
  tock: (await rowsOf(server, "tock")).length,
});

/** Runs `convect crons`; returns its output and the line of the job "tick" (or undefined). */
async function listCrons(server) {
  const result = await server.cli(["crons", ...server.adminFlags()]);
  const line = result.stdout.split("\n").find((l) => /(^|[\s"'])tick([\s"':,]|$)/.test(l));
  return { output: result.stdout, line };
}

test("an interval cron job runs its mutation repeatedly, with its arguments", async (t, server) => {
  let rows = [];
  await until(
    async () => (rows = await rowsOf(server, "tick")).length >= 2,
    () => `two runs of the cron job (${rows.length} so far)`,
  );
  assert.equal(new Set(rows.map((row) => row._id)).size, rows.length);
  for (const row of rows) {
    const { _id, _creationTime, ...fields } = row;
    assert.deepEqual(fields, { fn: "tick", tag: "v1" });
  }
  assert.deepEqual(await rowsOf(server, "tock"), []);
});

test("`convect crons` lists the job with its function, schedule, last and next run", async (t, server) => {
  await until(
    async () => (await rowsOf(server, "tick")).length >= 1,
    () => "a first run of the cron job",
  );
  const { output, line } = await listCrons(server);
  assert.ok(line, `no line for the job "tick":\n${output}`);
  assert.match(line, /\bcrons_fns(\.js)?:tick\b/);
  assert.match(line, EVERY_SECOND);
  // It has run, so the line shows a last run as well as the next one.
  const times = line.match(TIME) ?? [];
  assert.ok(times.length >= 2, `expected a last and a next run time in: ${line}`);
});

test("a redeploy that changes the job runs the new function and arguments, and stops the old", async (t, server) => {
  await server.deploy("scheduler", { overlays: ["scheduler-crons-v2"] });
  // Once the deploy has returned, the old definition must not run again.
  const ticksAtDeploy = (await rowsOf(server, "tick")).length;
  assert.ok(ticksAtDeploy >= 1);
  let tocks = [];
  await until(
    async () => (tocks = await rowsOf(server, "tock")).length >= 2,
    () => `two runs of the changed job (${tocks.length} so far)`,
  );
  for (const row of tocks) {
    const { _id, _creationTime, ...fields } = row;
    assert.deepEqual(fields, { fn: "tock", tag: "v2", step: 2 });
  }
  assert.equal((await rowsOf(server, "tick")).length, ticksAtDeploy, "the old job ran after the redeploy");
});

test("`convect crons` shows the changed job's function", async (t, server) => {
  const { output, line } = await listCrons(server);
  assert.ok(line, `no line for the job "tick":\n${output}`);
  assert.match(line, /\bcrons_fns(\.js)?:tock\b/);
  assert.doesNotMatch(output, /\bcrons_fns(\.js)?:tick\b/);
  assert.match(line, EVERY_SECOND);
});

test("cron jobs keep running after a restart", async (t, server) => {
  const ticks = (await rowsOf(server, "tick")).length;
  await server.restart();
  const before = (await rowsOf(server, "tock")).length;
  let now = before;
  await until(
    async () => (now = (await rowsOf(server, "tock")).length) >= before + 2,
    () => `two runs after the restart (${now - before} so far)`,
  );
  // The restart brought back the deployed job, not the one it replaced.
  assert.equal((await rowsOf(server, "tick")).length, ticks);
});

test("a redeploy without crons.ts stops the job", async (t, server) => {
  await server.deploy("scheduler");
  const atDeploy = await counts(server);
  assert.ok(atDeploy.tock >= 2);
  // That nothing runs any more can only be observed for a while: 3 s is
  // three periods of the removed job, each of which would have added a row.
  await sleep(3000);
  assert.deepEqual(await counts(server), atDeploy, "a removed cron job still runs");
});

test("`convect crons` lists no job once crons.ts is gone", async (t, server) => {
  const { output, line } = await listCrons(server);
  assert.equal(line, undefined, `the removed job is still listed:\n${output}`);
  assert.doesNotMatch(output, /crons_fns/);
});
