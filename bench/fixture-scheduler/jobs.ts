// A burst of scheduled functions, for `convect-bench scheduler`: a mutation
// that schedules up to 1,000 jobs due at one instant, the job (one insert
// stamped with its start time), reads of what the jobs left, and the
// cheapest query there is, timed while the jobs run.
import { v } from "convex/values";
import { paginationOptsValidator } from "convex/server";
import { internalMutation, mutation, query } from "./_generated/server";
import { internal } from "./_generated/api";

export const work = internalMutation({
  args: { n: v.number() },
  handler: async (ctx, { n }) => {
    // In a mutation, Date.now() is fixed at the time its execution started.
    await ctx.db.insert("done", { n, startedAt: Date.now() });
  },
});

/** Schedules `work` for n = first .. first + count - 1, all due at `at` (ms since the epoch). */
export const scheduleBatch = mutation({
  args: { first: v.number(), count: v.number(), at: v.number() },
  handler: async (ctx, { first, count, at }) => {
    for (let n = first; n < first + count; n++) {
      await ctx.scheduler.runAt(at, internal.jobs.work, { n });
    }
  },
});

/** `[n, startedAt]` of each job that started at `since` (ms since the epoch) or later. */
export const doneSince = query({
  args: { since: v.number() },
  handler: async (ctx, { since }) => {
    const rows = await ctx.db
      .query("done")
      .withIndex("by_startedAt", (q) => q.gte("startedAt", since))
      .collect();
    return rows.map((row) => [row.n, row.startedAt]);
  },
});

/** The state and completion time (ms since the epoch) of each scheduled job, a page at a time. */
export const jobEnds = query({
  args: { paginationOpts: paginationOptsValidator },
  handler: async (ctx, { paginationOpts }) => {
    const result = await ctx.db.system.query("_scheduled_functions").paginate(paginationOpts);
    const page = result.page.map((job) => ({ kind: job.state.kind, completedTime: job.completedTime ?? null }));
    return { ...result, page };
  },
});

export const ping = query({ args: { n: v.number() }, handler: async (_ctx, { n }) => n + 1 });
