//! Errors reported by bundling and code generation, phrased for the author of
//! the functions folder: each names the offending file, and esbuild's own
//! messages carry `file:line:column` for problems in source text.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{}: the functions folder must be a directory", path.display())]
    NotADirectory { path: PathBuf },

    #[error(
        "{}: the \"_deps\" folder is reserved for dependencies; move this code to another folder",
        path.display()
    )]
    ReservedFolder { path: PathBuf },

    /// Convex's wording: these files always run in the default runtime.
    #[error("\"use node\" directive is not allowed for {relative}.")]
    NodeNotAllowed { relative: String },

    #[error(
        "esbuild was not found in a node_modules folder above {}; run `npm install` in your project (the `convex` package depends on esbuild) or set CONVECT_ESBUILD to an esbuild binary",
        from.display()
    )]
    EsbuildMissing { from: PathBuf },

    #[error("{}: invalid convex.json: {reason}", path.display())]
    ConvexJson { path: PathBuf, reason: String },

    #[error(
        "convex.json lists node.externalPackages, but no package.json was found in {} or above",
        from.display()
    )]
    PackageJsonMissing { from: PathBuf },

    #[error("{}: {reason}", path.display())]
    PackageJson { path: PathBuf, reason: String },

    /// esbuild wrote a map we cannot read: a bug of esbuild's or ours.
    #[error("the source map esbuild wrote for {module} is invalid: {reason}")]
    SourceMap { module: String, reason: String },

    /// esbuild wrote a metafile we cannot read: a bug of esbuild's or ours.
    #[error("the metafile esbuild wrote is invalid: {reason}")]
    Metafile { reason: String },

    #[error("bundling for {runtime} failed:\n{messages}{hint}")]
    Esbuild {
        runtime: &'static str,
        messages: String,
        hint: &'static str,
    },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}
