// Queries and mutations for the advisors of the multi-advisor chat:
// list (ordered by name), get, create, update (partial patch) and remove.
import { ConvexError, v } from "convex/values";
import { mutation, query, type MutationCtx } from "./_generated/server";
import type { Id } from "./_generated/dataModel";
import { advisorFields } from "./schema";

const advisor = v.object(advisorFields);
const advisorDoc = advisor.extend({
  _id: v.id("advisors"),
  _creationTime: v.number(),
});

export const list = query({
  args: {},
  returns: v.array(advisorDoc),
  handler: async (ctx) => {
    return await ctx.db.query("advisors").withIndex("by_name").collect();
  },
});

export const get = query({
  args: { id: v.id("advisors") },
  returns: v.union(advisorDoc, v.null()),
  handler: async (ctx, { id }) => {
    return await ctx.db.get("advisors", id);
  },
});

export const create = mutation({
  args: advisor,
  returns: v.id("advisors"),
  handler: async (ctx, fields) => {
    await checkName(ctx, fields.name, null);
    return await ctx.db.insert("advisors", fields);
  },
});

export const update = mutation({
  args: advisor.partial().extend({ id: v.id("advisors") }),
  returns: v.null(),
  handler: async (ctx, { id, ...fields }) => {
    await existing(ctx, id);
    if (fields.name !== undefined) {
      await checkName(ctx, fields.name, id);
    }
    await ctx.db.patch("advisors", id, fields);
    return null;
  },
});

export const remove = mutation({
  args: { id: v.id("advisors") },
  returns: v.null(),
  handler: async (ctx, { id }) => {
    await existing(ctx, id);
    await ctx.db.delete("advisors", id);
    return null;
  },
});

async function existing(ctx: MutationCtx, id: Id<"advisors">) {
  const doc = await ctx.db.get("advisors", id);
  if (doc === null) {
    throw new ConvexError({ code: "NOT_FOUND", message: `No advisor ${id}` });
  }
  return doc;
}

// Names must be non-blank and unique: users address advisors by name.
async function checkName(
  ctx: MutationCtx,
  name: string,
  self: Id<"advisors"> | null,
) {
  if (name.trim() === "") {
    throw new ConvexError({ code: "INVALID", message: "Name is empty" });
  }
  const clash = await ctx.db
    .query("advisors")
    .withIndex("by_name", (q) => q.eq("name", name))
    .first();
  if (clash !== null && clash._id !== self) {
    throw new ConvexError({
      code: "NAME_TAKEN",
      message: `An advisor named "${name}" already exists`,
    });
  }
}
