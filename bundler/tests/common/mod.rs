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
    pub fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().canonicalize().unwrap();
        let functions = root.join("convex");
        fs::create_dir(&functions).unwrap();
        Self {
            _temp: temp,
            root,
            functions,
        }
    }

    /// A project whose `node_modules` is the test one, or `None` (after saying
    /// why) when no `node_modules` with `convex` is available.
    pub fn with_node_modules() -> Option<Self> {
        let node_modules = node_modules()?;
        let project = Self::new();
        std::os::unix::fs::symlink(node_modules, project.root.join("node_modules")).unwrap();
        Some(project)
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

/// The `node_modules` holding `convex` for tests: the workspace's own (from
/// `npm ci` at the repository root), else `$CONVECT_TEST_NODE_MODULES`.
pub fn node_modules() -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules");
    let from_env = std::env::var_os("CONVECT_TEST_NODE_MODULES").map(PathBuf::from);
    let found = [Some(workspace), from_env]
        .into_iter()
        .flatten()
        .find(|dir| dir.join("convex/package.json").is_file());
    if found.is_none() {
        eprintln!(
            "skipped: no node_modules with convex (run `npm ci` at the repository root or set CONVECT_TEST_NODE_MODULES)"
        );
    }
    found.map(|dir| dir.canonicalize().unwrap())
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
pub fn sample_app() -> Option<Project> {
    let project = Project::with_node_modules()?;
    project
        .file("schema.ts", SCHEMA)
        .file("messages.ts", MESSAGES);
    convect_bundler::codegen(&project.functions).unwrap();
    Some(project)
}
