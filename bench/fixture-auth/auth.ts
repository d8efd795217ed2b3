// What `convect-bench auth` calls with a user's token and without: who is
// calling, and the same query without asking, the floor of both.
import { query } from "./_generated/server";

export const whoami = query({
  args: {},
  handler: async (ctx) => (await ctx.auth.getUserIdentity())?.subject ?? null,
});

export const ping = query({ args: {}, handler: async () => null });
