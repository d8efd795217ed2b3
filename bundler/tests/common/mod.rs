//! Shared fixtures for the integration tests: throwaway projects with a
//! functions folder, optionally wired to a real `node_modules` with `convex`.

#![allow(dead_code)] // each test binary uses a different subset

use std::fs;
use std::path::{Path, PathBuf};

use convect_bundler::{bundle, BundleError, Module, ModuleSet};

pub struct Project {
    // Kept for its Drop, which deletes the project.
    _temp: tempfile::TempDir,
    pub root: PathBuf,
    pub functions: PathBuf,
}

impl Project {
    /// A project whose `node_modules` is the workspace's, for esbuild and `convex`.
    pub fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().canonicalize().unwrap();
        let functions = root.join("convex");
        fs::create_dir(&functions).unwrap();
        std::os::unix::fs::symlink(node_modules(), root.join("node_modules")).unwrap();
        Self {
            _temp: temp,
            root,
            functions,
        }
    }

    /// A project in a subfolder of the temporary folder, `<tmp>/app/convex`,
    /// whose own `node_modules` (`<tmp>/app/node_modules`) is a real folder for
    /// the test to fill; esbuild and `convex` come from the workspace's, linked
    /// as `<tmp>/node_modules`, a folder further up.
    pub fn with_own_packages() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let outer = temp.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(node_modules(), outer.join("node_modules")).unwrap();
        let root = outer.join("app");
        let functions = root.join("convex");
        fs::create_dir_all(root.join("node_modules")).unwrap();
        fs::create_dir(&functions).unwrap();
        Self {
            _temp: temp,
            root,
            functions,
        }
    }

    /// Writes a file of the functions folder.
    pub fn file(&self, relative: &str, text: &str) -> &Self {
        write(&self.functions.join(relative), text);
        self
    }

    /// Writes a file relative to the project root (outside the functions folder).
    pub fn root_file(&self, relative: &str, text: &str) -> &Self {
        write(&self.root.join(relative), text);
        self
    }

    pub fn bundle(&self) -> Result<ModuleSet, BundleError> {
        bundle(&self.functions)
    }
}

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// The workspace's `node_modules` (from `npm ci` at the repository root),
/// which holds esbuild and `convex`; bundling cannot be tested without it.
pub fn node_modules() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules");
    assert!(
        workspace.join("convex/package.json").is_file(),
        "run `npm ci` at the repository root first: the bundler tests need esbuild and convex from node_modules"
    );
    workspace.canonicalize().unwrap()
}

pub fn module<'s>(set: &'s ModuleSet, path: &str) -> &'s Module {
    set.get(path).unwrap_or_else(|| {
        let paths: Vec<&str> = set.modules.iter().map(|m| m.path.as_str()).collect();
        panic!("no module {path} in {paths:?}")
    })
}

pub fn paths(set: &ModuleSet) -> Vec<&str> {
    set.modules.iter().map(|m| m.path.as_str()).collect()
}

/// A small Convex app using the real `convex` package.
pub const SCHEMA: &str = r#"import { defineSchema, defineTable } from "convex/server";
import { v } from "convex/values";

export default defineSchema({
  messages: defineTable({ author: v.string(), body: v.string() }).index("by_author", ["author"]),
});
"#;

pub const MESSAGES: &str = r#"import { action, internalMutation, mutation, query } from "./_generated/server";
import { api, internal } from "./_generated/api";
import { v } from "convex/values";
import type { Doc, Id } from "./_generated/dataModel";

export const list = query({
  args: { author: v.string() },
  handler: async (ctx, args): Promise<Doc<"messages">[]> => {
    return await ctx.db
      .query("messages")
      .withIndex("by_author", (q) => q.eq("author", args.author))
      .collect();
  },
});

export const send = mutation({
  args: { author: v.string(), body: v.string() },
  handler: async (ctx, args): Promise<Id<"messages">> => {
    return await ctx.db.insert("messages", { author: args.author, body: args.body });
  },
});

export const clear = internalMutation({
  args: {},
  handler: async (ctx) => {
    for (const message of await ctx.db.query("messages").collect()) {
      await ctx.db.delete(message._id);
    }
  },
});

export const sendAndCount = action({
  args: { body: v.string() },
  // Annotated because the result depends on `api`, which depends on this module.
  handler: async (ctx, args): Promise<{ id: Id<"messages">; count: number }> => {
    const id = await ctx.runMutation(api.messages.send, { author: "bot", body: args.body });
    await ctx.runMutation(internal.messages.clear, {});
    const all = await ctx.runQuery(api.messages.list, { author: "bot" });
    return { id, count: all.length };
  },
});
"#;

/// The sample app with its `_generated` folder, ready to bundle.
pub fn sample_app() -> Project {
    let project = Project::new();
    project
        .file("schema.ts", SCHEMA)
        .file("messages.ts", MESSAGES);
    convect_bundler::codegen(&project.functions).unwrap();
    project
}
