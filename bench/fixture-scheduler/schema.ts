// `by_startedAt` lets the bench read only the jobs done since its last look,
// so that watching the burst costs the server little beside the burst.
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  done: defineTable({ n: v.number(), startedAt: v.number() }).index("by_startedAt", ["startedAt"]),
});
