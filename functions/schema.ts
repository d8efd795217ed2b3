// Schema of Convect's own deployment: the advisors of the multi-advisor chat.
// `advisorFields` is shared with advisors.ts so that the table and the
// function validators can never drift apart.
import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export const advisorFields = {
  name: v.string(),
  title: v.string(),
  expertise: v.array(v.string()),
  // The system prompt that makes the advisor speak in character.
  persona: v.string(),
  // Usually a single emoji.
  avatar: v.optional(v.string()),
  // Stable key of records imported from seeds/ or an older system.
  legacyId: v.optional(v.string()),
};

export default defineSchema({
  advisors: defineTable(advisorFields)
    .index("by_name", ["name"])
    .index("by_legacy_id", ["legacyId"]),
});
