// File storage as a client uses it, for `convect-bench files`: an upload URL
// from a mutation, the download URL of a stored file from a query, and the
// cheapest query there is, the baseline of the HTTP action `POST /ping`.
import { v } from "convex/values";
import { mutation, query } from "./_generated/server";

export const generateUploadUrl = mutation({
  args: {},
  handler: async (ctx) => await ctx.storage.generateUploadUrl(),
});

export const getUrl = query({
  args: { storageId: v.id("_storage") },
  handler: async (ctx, { storageId }) => await ctx.storage.getUrl(storageId),
});

export const ping = query({ args: { n: v.number() }, handler: async (_ctx, { n }) => n + 1 });
