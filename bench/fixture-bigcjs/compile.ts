"use node";
// A "use node" action with a large CommonJS dependency: the TypeScript
// compiler, about 9 MB of CommonJS that requires Node built-ins.
import ts from "typescript";
import { v } from "convex/values";
import { action } from "./_generated/server";

export const transpile = action({
  args: { source: v.string() },
  handler: async (_ctx, { source }) => ts.transpileModule(source, {}).outputText,
});
