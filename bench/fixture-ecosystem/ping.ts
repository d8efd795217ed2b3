// The cheapest action there is, in Convect's embedded runtime (QuickJS).
import { v } from "convex/values";
import { action } from "./_generated/server";

export const ping = action({ args: { n: v.number() }, handler: async (_ctx, { n }) => n + 1 });
