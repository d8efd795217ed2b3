// Scheduled functions (ctx.scheduler) end to end, fixture
// tests/fixtures/scheduler: runAfter and runAt (timestamp or Date) from
// mutations and from actions return the id of a `_scheduled_functions`
// document (name, args, scheduledTime, completedTime, state) read through
// ctx.db.system; cancel from mutations and actions; jobs never run before
// they are due; scheduling and canceling in a mutation are part of its
// transaction (a mutation that throws schedules and cancels nothing, a job
// runs after its scheduler commits) while scheduling from an action is not;
// a scheduled mutation's writes commit together with its success, a failing
// one keeps none; chains of jobs that schedule the next link; the limit of
// 1000 scheduled functions per mutation; live ConvexClient subscriptions to
// `_scheduled_functions`; `convect scheduled`; and, on a second server, a
// graceful restart and kill -9 with jobs pending and in progress: mutations
// run exactly once, an action interrupted by the crash is failed and never
// run again. Functions are called with the official ConvexHttpClient and
// ConvexClient.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { useServer } from "./harness.mjs";
import { connect } from "./sockets.mjs";
import { api, ConvexError, range, recordUpdates, rejects, uniqueName, waitFor } from "./support.mjs";

const WAIT_MS = 20_000;
const HOUR = 3_600_000;
const FINAL = new Set(["success", "failed", "canceled"]);
/**
 * The error of an action that was in progress when the server died. Convex
 * says "Transient error while executing action"; Convect adds that the
 * action will not be retried.
 */
const INTERRUPTED = /transient error|retr/i;

/** Convex names a job's function `module.js:export`; compare without `.js`. */
const fnName = (name) => name.replace(/\.js:/, ":");

/** waitFor, whose timeout message `what()` describes the state at the time. */
async function until(predicate, what, timeoutMs = WAIT_MS) {
  try {
    await waitFor(predicate, timeoutMs, "");
  } catch (err) {
    if (err.message.startsWith("timed out waiting for")) err.message = `timed out waiting for ${what()}`;
    throw err;
  }
}

const getJob = (client, id) => client.query(api.jobs.get, { id });
const listJobs = (client, tag) => client.query(api.jobs.list, { tag });
const rowsOf = (client, tag) => client.query(api.jobs.rows, { tag });
const valuesOf = async (client, tag) => (await rowsOf(client, tag)).map((row) => row.value);

/** Polls a job until it is success, failed or canceled; returns its document. */
async function settled(client, id, timeoutMs = WAIT_MS) {
  let doc;
  await until(
    async () => FINAL.has((doc = await getJob(client, id))?.state.kind),
    () => `job ${id} to finish (now ${JSON.stringify(doc)})`,
    timeoutMs,
  );
  return doc;
}

/** Polls until the jobs tagged `tag` are `count` and all finished; returns them. */
async function allSettled(client, tag, count, timeoutMs = WAIT_MS) {
  let jobs = [];
  await until(
    async () => {
      jobs = await listJobs(client, tag);
      return jobs.length === count && jobs.every((job) => FINAL.has(job.state.kind));
    },
    () => `${count} finished jobs tagged ${tag} (now ${JSON.stringify(jobs.map((j) => j.state))})`,
    timeoutMs,
  );
  return jobs;
}

/**
 * Schedules a `record` job due at `dueAt` and waits for its success. The
 * executor takes due jobs in order of their time, so a job due earlier (one
 * that was canceled, or whose scheduling was rolled back) would have been
 * started by then if it ran at all.
 */
async function sentinel(client, dueAt) {
  const tag = uniqueName("sentinel");
  const id = await client.mutation(api.schedule.at, { timestamp: dueAt, asDate: false, tag, value: null });
  assert.deepEqual((await settled(client, id)).state, { kind: "success" });
}

/** Checks a `_scheduled_functions` document's identity and fields. */
function assertJob(doc, { id, name, args }) {
  assert.ok(doc, `job ${id} not found`);
  assert.equal(doc._id, id);
  assert.equal(typeof doc._creationTime, "number");
  assert.equal(fnName(doc.name), name);
  assert.deepEqual(doc.args, args);
  assert.equal(typeof doc.scheduledTime, "number");
  const fields = ["_creationTime", "_id", "args", "name", "scheduledTime", "state"];
  if (doc.completedTime !== undefined) fields.push("completedTime");
  assert.deepEqual(Object.keys(doc).sort(), fields.sort(), JSON.stringify(doc));
  if (FINAL.has(doc.state.kind)) {
    assert.equal(typeof doc.completedTime, "number", `finished without completedTime: ${JSON.stringify(doc)}`);
  } else {
    assert.equal(doc.completedTime, undefined, `unfinished with a completedTime: ${JSON.stringify(doc)}`);
  }
}

/** Asserts a finished job succeeded, after it was due. */
function assertSucceeded(doc) {
  assert.deepEqual(doc.state, { kind: "success" }, JSON.stringify(doc));
  assert.ok(doc.completedTime >= doc.scheduledTime, `completed before it was due: ${JSON.stringify(doc)}`);
}


/** The states a job went through in a subscription to jobs.list, without repeats. */
function history(rec, id) {
  const kinds = [];
  for (const jobs of rec.values) {
    const job = jobs.find((j) => j._id === id);
    if (job && kinds.at(-1) !== job.state.kind) kinds.push(job.state.kind);
  }
  return kinds;
}

describe("ctx.scheduler", () => {
  const srv = useServer((server) => server.deploy("scheduler"));
  const test = srv.test;

  test("runAfter(0) from a mutation returns the id of a _scheduled_functions document; the job runs once", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("after");
    const before = Date.now();
    const id = await client.mutation(api.schedule.after, { delayMs: 0, tag, value: 1 });
    const after = Date.now();
    assert.equal(typeof id, "string");

    const expected = { id, name: "targets:record", args: [{ tag, value: 1 }] };
    const first = await getJob(client, id);
    assertJob(first, expected);
    assert.ok(["pending", "success"].includes(first.state.kind), JSON.stringify(first.state));
    // runAfter(ms) is due `ms` after the scheduling mutation ran.
    assert.ok(
      first.scheduledTime >= before && first.scheduledTime <= after + 1,
      `scheduledTime ${first.scheduledTime} is not within [${before}, ${after}]`,
    );

    const done = await settled(client, id);
    assertJob(done, expected);
    assertSucceeded(done);
    assert.equal(done._creationTime, first._creationTime);
    assert.equal(done.scheduledTime, first.scheduledTime);
    const rows = await rowsOf(client, tag);
    assert.deepEqual(rows.map((row) => row.value), [1]);
    assert.ok(rows[0]._creationTime >= done.scheduledTime, "the job ran before it was due");
    // The listing shows the same document as db.system.get.
    assert.deepEqual(await listJobs(client, tag), [done]);
  });

  test("runAfter(ms), runAt(timestamp) and runAt(Date) are due at their time, and not run before", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("timed");
    const before = Date.now();
    const delayed = await client.mutation(api.schedule.after, { delayMs: 1500, tag, value: "after" });
    const after = Date.now();
    const at = Date.now() + 1500;
    const atNumber = await client.mutation(api.schedule.at, { timestamp: at, asDate: false, tag, value: "at" });
    const atDate = await client.mutation(api.schedule.at, { timestamp: at + 1, asDate: true, tag, value: "atDate" });
    // A time in the past is kept as given, and the job is due at once.
    const past = Date.now() - 60_000;
    const inThePast = await client.mutation(api.schedule.at, { timestamp: past, asDate: false, tag, value: "past" });

    // A job not yet due when the query answered was pending in its snapshot.
    const snapshot = await listJobs(client, tag);
    const answeredAt = Date.now();
    assert.equal(snapshot.length, 4);
    let checked = 0;
    for (const job of snapshot) {
      if (job.scheduledTime > answeredAt) {
        assert.equal(job.state.kind, "pending", JSON.stringify(job));
        assertJob(job, { id: job._id, name: "targets:record", args: job.args });
        checked++;
      }
    }
    t.diagnostic(`${checked} jobs checked while not yet due`);

    const docs = {};
    for (const [value, id] of [["after", delayed], ["at", atNumber], ["atDate", atDate], ["past", inThePast]]) {
      docs[value] = await settled(client, id);
      assertJob(docs[value], { id, name: "targets:record", args: [{ tag, value }] });
      assertSucceeded(docs[value]);
    }
    assert.ok(
      docs.after.scheduledTime >= before + 1500 && docs.after.scheduledTime <= after + 1501,
      `runAfter(1500) is due at ${docs.after.scheduledTime}, not within [${before + 1500}, ${after + 1500}]`,
    );
    assert.equal(Math.round(docs.at.scheduledTime), at);
    assert.equal(Math.round(docs.atDate.scheduledTime), at + 1);
    assert.equal(Math.round(docs.past.scheduledTime), past);

    const rows = await rowsOf(client, tag);
    assert.deepEqual(rows.map((row) => row.value).sort(), ["after", "at", "atDate", "past"]);
    for (const row of rows) {
      assert.ok(
        row._creationTime >= docs[row.value].scheduledTime,
        `job ${row.value} ran at ${row._creationTime}, before it was due at ${docs[row.value].scheduledTime}`,
      );
    }
  });

  test("an action schedules mutations and actions with runAfter, runAt and runAt(Date)", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("from-action");
    const at = Date.now() + 500;
    const calls = [
      ["after", { mode: "after", time: 0 }, "targets:record"],
      ["at", { mode: "at", time: at }, "targets:record"],
      ["atDate", { mode: "atDate", time: at }, "targets:record"],
      ["action", { mode: "after", time: 0, target: "recordFromAction" }, "targets:recordFromAction"],
    ];
    const ids = [];
    for (const [value, how] of calls) {
      const id = await client.action(api.schedule.fromAction, { ...how, tag, value });
      assert.equal(typeof id, "string");
      ids.push(id);
    }
    assert.equal(new Set(ids).size, ids.length);
    for (const [i, [value, how, name]] of calls.entries()) {
      const doc = await settled(client, ids[i]);
      assertJob(doc, { id: ids[i], name, args: [{ tag, value }] });
      assertSucceeded(doc);
      if (how.mode !== "after") assert.equal(Math.round(doc.scheduledTime), at);
    }
    assert.deepEqual((await valuesOf(client, tag)).sort(), ["action", "after", "at", "atDate"]);
  });

  test("scheduling from an action is not transactional: the job runs although the action throws", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("action-throws");
    const error = await rejects(client.action(api.schedule.fromActionThenThrow, { delayMs: 0, tag, value: "kept" }));
    assert.ok(error instanceof ConvexError, `not a ConvexError: ${error.stack}`);
    const id = error.data.scheduledId;
    assert.equal(typeof id, "string");
    const doc = await settled(client, id);
    assertJob(doc, { id, name: "targets:record", args: [{ tag, value: "kept" }] });
    assertSucceeded(doc);
    assert.deepEqual(await valuesOf(client, tag), ["kept"]);
  });

  test("cancel from a mutation and from an action: the job is canceled and never runs", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("cancel");
    // Due in 3 s, which leaves the cancels below ample time to come first.
    const jobs = [
      ["mutation cancels", "record", (id) => client.mutation(api.schedule.cancel, { id })],
      ["action cancels", "record", (id) => client.action(api.schedule.cancelFromAction, { id })],
      ["action job", "recordFromAction", (id) => client.mutation(api.schedule.cancel, { id })],
    ];
    const ids = [];
    for (const [value, target] of jobs) {
      ids.push(await client.mutation(api.schedule.after, { delayMs: 3000, target, tag, value }));
    }
    for (const [i, [, , cancel]] of jobs.entries()) {
      assert.equal(await cancel(ids[i]), null);
    }
    const docs = [];
    for (const [i, [value, target]] of jobs.entries()) {
      const doc = await getJob(client, ids[i]);
      assertJob(doc, { id: ids[i], name: `targets:${target}`, args: [{ tag, value }] });
      assert.deepEqual(doc.state, { kind: "canceled" });
      docs.push(doc);
    }
    // Canceling a canceled job changes nothing.
    await client.mutation(api.schedule.cancel, { id: ids[0] });
    assert.deepEqual(await getJob(client, ids[0]), docs[0]);

    await sentinel(client, Math.max(...docs.map((doc) => doc.scheduledTime)) + 100);
    assert.deepEqual(await valuesOf(client, tag), []);
    for (const [i, id] of ids.entries()) assert.deepEqual(await getJob(client, id), docs[i]);
  });

  test("a job scheduled by a mutation that then throws never exists and never runs", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("rolled-back");
    const error = await rejects(client.mutation(api.schedule.thenThrow, { tag, value: "never" }));
    assert.ok(error instanceof ConvexError, `not a ConvexError: ${error.stack}`);
    const id = error.data.scheduledId;
    assert.equal(typeof id, "string");
    assert.equal(await getJob(client, id), null);
    assert.deepEqual(await listJobs(client, tag), []);

    await sentinel(client, Date.now());
    assert.equal(await getJob(client, id), null);
    assert.deepEqual(await listJobs(client, tag), []);
    // Neither the aborted mutation's own row nor the job's.
    assert.deepEqual(await rowsOf(client, tag), []);
  });

  test("runAfter(0) runs after the scheduling mutation commits and sees its writes", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("after-commit");
    const id = await client.mutation(api.schedule.writeThenSchedule, { tag });
    const doc = await settled(client, id);
    assertJob(doc, { id, name: "targets:observe", args: [{ tag, value: `${tag}-parent` }] });
    assertSucceeded(doc);
    const [parent] = await rowsOf(client, `${tag}-parent`);
    const seen = await rowsOf(client, tag);
    assert.deepEqual(seen.map((row) => row.value), [true], "the job did not see the scheduling mutation's write");
    assert.ok(seen[0]._creationTime > parent._creationTime);
  });

  test("a cancel in a mutation that then throws is rolled back: the job stays scheduled and runs", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("cancel-rolled-back");
    const id = await client.mutation(api.schedule.after, { delayMs: 1500, tag, value: "survives" });
    await rejects(client.mutation(api.schedule.cancelThenThrow, { id }), "abort after cancel");
    const kept = await getJob(client, id);
    assert.ok(["pending", "success"].includes(kept.state.kind), `after the rolled-back cancel: ${JSON.stringify(kept)}`);
    const doc = await settled(client, id);
    assertSucceeded(doc);
    assert.deepEqual(await valuesOf(client, tag), ["survives"]);
  });

  test("a scheduled mutation that throws is failed with its error and keeps none of its writes", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("fails");
    const id = await client.mutation(api.schedule.after, { delayMs: 0, target: "fail", tag, value: null });
    const doc = await settled(client, id);
    assertJob(doc, { id, name: "targets:fail", args: [{ tag, value: null }] });
    assert.equal(doc.state.kind, "failed", JSON.stringify(doc));
    assert.deepEqual(Object.keys(doc.state).sort(), ["error", "kind"]);
    assert.equal(typeof doc.state.error, "string");
    assert.ok(doc.state.error.includes(`scheduled failure ${tag}`), doc.state.error);
    // The mutation inserted a row before it threw.
    assert.deepEqual(await rowsOf(client, tag), []);
  });

  test("a scheduled action that throws is failed; what it wrote through runMutation stays", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("action-fails");
    const id = await client.mutation(api.schedule.after, { delayMs: 0, target: "failAction", tag, value: null });
    const doc = await settled(client, id);
    assertJob(doc, { id, name: "targets:failAction", args: [{ tag, value: null }] });
    assert.equal(doc.state.kind, "failed", JSON.stringify(doc));
    assert.ok(doc.state.error.includes(`scheduled action failure ${tag}`), doc.state.error);
    assert.deepEqual(await valuesOf(client, tag), ["written before the throw"]);
  });

  test("a scheduled mutation's writes and its success become visible together", async (t, server) => {
    const tag = uniqueName("atomic");
    const { client: ws } = connect(t, server);
    const snapshots = recordUpdates(ws, api.jobs.withRows, { tag });
    await until(() => snapshots.values.length >= 1, () => "the first snapshot");
    const jobs = [
      ...range(12).map((i) => ({ delayMs: 100 * i, value: i })),
      ...range(3).map((i) => ({ delayMs: 150 + 300 * i, target: "fail", value: `f${i}` })),
    ];
    const ids = await ws.mutation(api.schedule.several, { tag, jobs });
    assert.equal(ids.length, jobs.length);
    assert.equal(new Set(ids).size, jobs.length);
    await until(
      () => {
        const last = snapshots.latest();
        return last.jobs.length === jobs.length && last.jobs.every((job) => FINAL.has(job.state.kind));
      },
      () => `every job to finish (now ${JSON.stringify(snapshots.latest())})`,
    );
    t.diagnostic(`${snapshots.values.length} snapshots`);
    for (const snapshot of snapshots.values) {
      // Other transactions never see a scheduled mutation in progress.
      for (const job of snapshot.jobs) {
        assert.ok(["pending", "success", "failed"].includes(job.state.kind), JSON.stringify(snapshot));
      }
      const succeeded = snapshot.jobs.filter((job) => job.state.kind === "success").map((job) => String(job.value));
      assert.deepEqual(
        snapshot.rows.map(String).sort(),
        succeeded.sort(),
        `rows and successful jobs differ in one snapshot: ${JSON.stringify(snapshot)}`,
      );
    }
    const last = snapshots.latest();
    assert.deepEqual(last.jobs.map((job) => job.id), ids);
    for (const job of last.jobs) {
      if (typeof job.value === "number") {
        assert.deepEqual(job.state, { kind: "success" });
      } else {
        assert.equal(job.state.kind, "failed");
        assert.ok(job.state.error.includes(`scheduled failure ${tag}`), job.state.error);
      }
    }
    assert.deepEqual(snapshots.errors, []);
  });

  test("chains: a mutation that schedules itself runs every link once", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("chain");
    assert.equal(await client.mutation(api.schedule.chain, { tag, n: 10 }), null);
    // The first link ran as the call above; it scheduled n = 9, and so on down to 0.
    const jobs = await allSettled(client, tag, 10);
    for (const job of jobs) {
      assertJob(job, { id: job._id, name: "schedule:chain", args: job.args });
      assertSucceeded(job);
    }
    assert.deepEqual(jobs.map((job) => job.args[0].n).sort((a, b) => a - b), range(10));
    assert.deepEqual((await valuesOf(client, tag)).sort((a, b) => a - b), range(11));
  });

  test("chains: links alternating between actions and mutations all run", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("mixed-chain");
    const first = await client.mutation(api.schedule.mixedChain, { tag, n: 6 });
    const jobs = await allSettled(client, tag, 7);
    assert.ok(jobs.some((job) => job._id === first));
    for (const job of jobs) {
      const { n } = job.args[0];
      const name = n % 2 === 0 ? "schedule:actionLink" : "schedule:mutationLink";
      assertJob(job, { id: job._id, name, args: [{ tag, n }] });
      assertSucceeded(job);
    }
    assert.deepEqual(jobs.map((job) => job.args[0].n).sort((a, b) => a - b), range(7));
    assert.deepEqual((await valuesOf(client, tag)).sort((a, b) => a - b), range(7));
  });

  test("one mutation may schedule at most 1000 functions", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("too-many");
    await rejects(client.mutation(api.schedule.many, { tag, count: 1001 }), /1000/);
    assert.deepEqual(await listJobs(client, tag), []);
  });

  test("reads of _scheduled_functions are reactive: a subscriber sees pending, then success, failed or canceled", async (t, server) => {
    const tag = uniqueName("live");
    const { client: ws } = connect(t, server);
    const list = recordUpdates(ws, api.jobs.list, { tag });
    await until(() => list.values.length >= 1, () => "the first result");
    assert.deepEqual(list.values[0], []);
    const kindOf = (id) => list.latest().find((job) => job._id === id)?.state.kind;

    // ConvexClient resolves a mutation once its subscriptions reflect the
    // write, so a new job is in the list when the call returns, pending as
    // long as it is not due (the jobs below are due 1 s and 1 h later).
    const later = await ws.mutation(api.schedule.after, { delayMs: HOUR, tag, value: "later" });
    assert.equal(kindOf(later), "pending");
    const soon = await ws.mutation(api.schedule.after, { delayMs: 1000, tag, value: "soon" });
    const failing = await ws.mutation(api.schedule.after, { delayMs: 1000, target: "fail", tag, value: "failing" });
    await ws.mutation(api.schedule.cancel, { id: later });
    assert.equal(kindOf(later), "canceled");
    await until(
      () => kindOf(soon) === "success" && kindOf(failing) === "failed",
      () => `the jobs to finish (now ${JSON.stringify(list.latest())})`,
    );

    assert.deepEqual(history(list, later), ["pending", "canceled"]);
    assert.deepEqual(history(list, soon), ["pending", "success"]);
    assert.deepEqual(history(list, failing), ["pending", "failed"]);
    const failed = list.latest().find((job) => job._id === failing);
    assert.ok(failed.state.error.includes(`scheduled failure ${tag}`), failed.state.error);
    assert.deepEqual(list.latest().map((job) => job._id), [later, soon, failing]);
    assert.deepEqual(list.errors, []);
  });

  test("`convect scheduled` lists jobs with their name, state and time", async (t, server) => {
    const client = server.client();
    const tag = uniqueName("cli");
    const pending = await client.mutation(api.schedule.after, { delayMs: HOUR, tag, value: "pending" });
    const succeeded = await client.mutation(api.schedule.after, { delayMs: 0, tag, value: "success" });
    const failed = await client.mutation(api.schedule.after, { delayMs: 0, target: "fail", tag, value: "failed" });
    const canceled = await client.mutation(api.schedule.after, { delayMs: HOUR, tag, value: "canceled" });
    await client.mutation(api.schedule.cancel, { id: canceled });
    await settled(client, succeeded);
    await settled(client, failed);

    const result = await server.cli(["scheduled", ...server.adminFlags()]);
    const lines = result.stdout.split("\n");
    for (const [id, kind, name] of [
      [pending, "pending", "record"],
      [succeeded, "success", "record"],
      [failed, "failed", "fail"],
      [canceled, "canceled", "record"],
    ]) {
      const doc = await getJob(client, id);
      assert.equal(doc.state.kind, kind);
      const line = lines.find((l) => l.includes(id));
      assert.ok(line, `no line names job ${id}:\n${result.stdout}`);
      assert.match(line, new RegExp(`\\btargets(\\.js)?:${name}\\b`), line);
      assert.match(line, new RegExp(`\\b${kind}\\b`), line);
      assert.ok(showsTime(line, doc.scheduledTime), `line does not show scheduledTime ${doc.scheduledTime}: ${line}`);
    }
  });
});

/**
 * Whether a line of CLI output shows the time `ms`: as integer milliseconds,
 * or as ISO 8601 UTC to the minute (with "T" or a space).
 */
function showsTime(line, ms) {
  const minute = new Date(ms).toISOString().slice(0, 16);
  return [String(Math.floor(ms)), String(Math.round(ms)), minute, minute.replace("T", " ")].some((s) =>
    line.includes(s),
  );
}

describe("scheduled jobs across restarts", () => {
  const srv = useServer((server) => server.deploy("scheduler"));
  const test = srv.test;

  test("a pending job survives a graceful restart and runs", async (t, server) => {
    const tag = uniqueName("graceful");
    const id = await server.client().mutation(api.schedule.after, { delayMs: 1500, tag, value: "later" });
    const before = await getJob(server.client(), id);
    await server.stop();
    await server.restart();
    const client = server.client();
    const doc = await settled(client, id);
    assertJob(doc, { id, name: "targets:record", args: [{ tag, value: "later" }] });
    assertSucceeded(doc);
    assert.equal(doc.scheduledTime, before.scheduledTime);
    assert.deepEqual(await valuesOf(client, tag), ["later"]);
  });

  test("an action in progress when the server is killed is failed on restart and never run again", async (t, server) => {
    let client = server.client();
    const tag = uniqueName("hang");
    const id = await client.mutation(api.schedule.after, { delayMs: 0, target: "hang", tag, value: null });
    let doc;
    await until(
      async () =>
        (doc = await getJob(client, id))?.state.kind === "inProgress" &&
        (await valuesOf(client, tag)).length === 1,
      () => `the action to start (job: ${JSON.stringify(doc)})`,
    );
    assertJob(doc, { id, name: "targets:hang", args: [{ tag, value: null }] });

    await server.kill();
    await server.restart();
    client = server.client();
    const done = await settled(client, id);
    assertJob(done, { id, name: "targets:hang", args: [{ tag, value: null }] });
    assert.equal(done.state.kind, "failed", JSON.stringify(done));
    assert.match(done.state.error, INTERRUPTED);
    // It started once, and neither finished nor started again.
    assert.deepEqual(await valuesOf(client, tag), ["started"]);
  });

  test(
    "kill -9 amid 1000 scheduled mutations and 100 scheduled actions: mutations run exactly once, actions at most once",
    async (t, server) => {
      const MUTATIONS = 1000;
      const ACTIONS = 100;
      const BATCHES = 5;
      const SPREAD_MS = 2000;
      const run = uniqueName("run");
      let client = server.client();

      // Job n of each kind is due at start + n * SPREAD_MS / total: both kinds
      // spread over the same 2 s, scheduled 200 mutations and 20 actions per
      // mutation call.
      const start = Date.now() + 300;
      const kindOf = new Map();
      const schedule = async (kind, total, b) => {
        const count = total / BATCHES;
        const ids = await client.mutation(api.durable.scheduleBatch, {
          run,
          kind,
          from: b * count,
          count,
          total,
          start,
          spreadMs: SPREAD_MS,
        });
        assert.equal(ids.length, count);
        for (const id of ids) kindOf.set(id, kind);
      };
      for (const b of range(BATCHES)) {
        await schedule("mutation", MUTATIONS, b);
        await schedule("action", ACTIONS, b);
      }
      assert.equal(kindOf.size, MUTATIONS + ACTIONS);

      let progress = { mutation: [], action: [] };
      await until(
        async () => (progress = await client.query(api.durable.rows, { run })).mutation.length >= 150,
        () => `150 mutation jobs to run (${progress.mutation.length} so far)`,
        60_000,
      );
      await server.kill();
      t.diagnostic(
        `killed with ${progress.mutation.length}/${MUTATIONS} mutation rows and ` +
          `${progress.action.length}/${ACTIONS} action rows`,
      );
      // Jobs cannot run before they are due, and the last ones are due
      // SPREAD_MS after the first: the kill lands while jobs are left.
      assert.ok(progress.mutation.length < MUTATIONS, "every job had run before the kill: nothing was tested");

      await server.restart();
      client = server.client();
      let jobs = await client.query(api.durable.jobs, { run });
      // Every acknowledged scheduling survived the crash, once.
      assert.deepEqual(jobs.map((job) => job.id).sort(), [...kindOf.keys()].sort());

      const summary = () => {
        const counts = {};
        for (const job of jobs) {
          const key = `${kindOf.get(job.id)} ${job.state.kind}`;
          counts[key] = (counts[key] ?? 0) + 1;
        }
        return JSON.stringify(counts);
      };
      await until(
        async () => (jobs = await client.query(api.durable.jobs, { run })).every((job) => FINAL.has(job.state.kind)),
        () => `every job to finish (${summary()})`,
        120_000,
      );
      t.diagnostic(`after the restart: ${summary()}`);
      const rows = await client.query(api.durable.rows, { run });

      // Mutations: every job succeeded, and wrote its row exactly once.
      const mutationJobs = jobs.filter((job) => kindOf.get(job.id) === "mutation");
      assert.equal(mutationJobs.length, MUTATIONS);
      for (const job of mutationJobs) {
        assert.equal(fnName(job.name), "durable:record");
        assert.deepEqual(job.state, { kind: "success" }, `mutation job ${job.n}: ${JSON.stringify(job.state)}`);
      }
      assert.deepEqual([...rows.mutation].sort((a, b) => a - b), range(MUTATIONS));

      // Actions: none ran twice; each succeeded (its row written once) or was
      // interrupted by the kill and failed, its row written at most once.
      const written = new Map();
      for (const n of rows.action) written.set(n, (written.get(n) ?? 0) + 1);
      for (const [n, count] of written) {
        assert.ok(n >= 0 && n < ACTIONS, `row for unknown action job ${n}`);
        assert.equal(count, 1, `action job ${n} wrote ${count} rows`);
      }
      const actionJobs = jobs.filter((job) => kindOf.get(job.id) === "action");
      assert.equal(actionJobs.length, ACTIONS);
      let interrupted = 0;
      for (const job of actionJobs) {
        assert.equal(fnName(job.name), "durable:recordFromAction");
        if (job.state.kind === "success") {
          assert.equal(written.get(job.n), 1, `action job ${job.n} succeeded without its row`);
        } else {
          assert.equal(job.state.kind, "failed", `action job ${job.n}: ${JSON.stringify(job.state)}`);
          assert.match(job.state.error, INTERRUPTED);
          interrupted++;
        }
      }
      t.diagnostic(`${interrupted} action jobs were interrupted by the kill`);
    },
    { timeout: 300_000 },
  );
});
