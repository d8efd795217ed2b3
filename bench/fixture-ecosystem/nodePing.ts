"use node";
// The same action in Node.js, to measure what the Node.js runtime adds per call.
import { v } from "convex/values";
import { action } from "./_generated/server";

export const ping = action({ args: { n: v.number() }, handler: async (_ctx, { n }) => n + 1 });
