//! Resolution of import specifiers to files, the way a bundler targeting ES
//! modules would: Node's algorithm with the `import` condition, TypeScript's
//! extensionless and `./foo.js`-means-`./foo.ts` imports, and Node built-ins
//! rejected because the runtime does not provide them.

use std::path::{Path, PathBuf};

use oxc_resolver::{ResolveError, ResolveOptions, Resolver};

use crate::error::ImportProblem;

const EXTENSIONS: &[&str] = &[".ts", ".tsx", ".js", ".mjs", ".jsx", ".json"];

/// Extensions of files the compiler can turn into modules.
const LOADABLE: &[&str] = &["js", "mjs", "cjs", "ts", "tsx", "mts", "cts", "jsx", "json"];

pub(crate) struct ImportResolver {
    modules: Resolver,
    /// Consulted only after a failure, to tell a missing package from a Node
    /// built-in, so that an npm package shadowing a built-in name still wins.
    builtins: Resolver,
}

impl ImportResolver {
    pub fn new() -> Self {
        let modules = Resolver::new(options());
        let builtins = modules.clone_with_options(options().with_builtin_modules(true));
        Self { modules, builtins }
    }

    /// Resolves `specifier` as written in `importer` to a loadable file.
    pub fn resolve(&self, importer: &Path, specifier: &str) -> Result<PathBuf, ImportProblem> {
        match self.modules.resolve_file(importer, specifier) {
            Ok(resolution) => loadable(resolution.into_path_buf()),
            Err(_) if self.is_builtin(importer, specifier) => Err(ImportProblem::NodeBuiltin),
            Err(err) => Err(ImportProblem::NotFound(describe(&err))),
        }
    }

    fn is_builtin(&self, importer: &Path, specifier: &str) -> bool {
        matches!(
            self.builtins.resolve_file(importer, specifier),
            Err(ResolveError::Builtin { .. })
        )
    }
}

fn options() -> ResolveOptions {
    ResolveOptions {
        condition_names: vec!["import".into(), "default".into()],
        extensions: EXTENSIONS.iter().map(|e| (*e).to_string()).collect(),
        extension_alias: vec![
            (
                ".js".into(),
                vec![".ts".into(), ".tsx".into(), ".js".into()],
            ),
            (".mjs".into(), vec![".mts".into(), ".mjs".into()]),
            (".jsx".into(), vec![".tsx".into(), ".jsx".into()]),
        ],
        // Packages without `exports` often point `module` at their ESM build.
        main_fields: vec!["module".into(), "main".into()],
        // NODE_PATH would make a deployment depend on the deployer's shell.
        node_path: false,
        ..ResolveOptions::default()
    }
}

fn loadable(path: PathBuf) -> Result<PathBuf, ImportProblem> {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if LOADABLE.contains(&extension) {
        Ok(path)
    } else {
        Err(ImportProblem::UnsupportedFileType)
    }
}

fn describe(err: &ResolveError) -> String {
    match err {
        ResolveError::NotFound(_) => format!(
            "no such file or package (tried extensions {})",
            EXTENSIONS.join(", ")
        ),
        other => other.to_string(),
    }
}
