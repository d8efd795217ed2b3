//! Errors reported by bundling and code generation, phrased for the author of
//! the functions folder: each names the offending file and, where the problem
//! is in source text, the line and column.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a source file, printed as `path:line:column` (1-based) so
/// editors and terminals can jump to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// Locates a byte offset of `source`; columns count characters, not bytes,
    /// because that is what editors display.
    pub fn at_offset(file: &Path, source: &str, offset: usize) -> Self {
        let offset = floor_char_boundary(source, offset.min(source.len()));
        let before = &source[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            file: file.to_path_buf(),
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

fn floor_char_boundary(source: &str, mut offset: usize) -> usize {
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

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

    #[error("{location}: syntax error: {message}")]
    Syntax { location: Location, message: String },

    #[error("{location}: cannot import \"{specifier}\": {problem}")]
    Import {
        location: Location,
        specifier: String,
        problem: ImportProblem,
    },

    #[error(
        "{location}: import() needs a string literal so the module can be shipped ahead of time"
    )]
    DynamicImport { location: Location },

    #[error(
        "{}: CommonJS modules (require/module.exports) are not supported; use an ES module build of this code",
        path.display()
    )]
    CommonJs { path: PathBuf },

    #[error("{location}: invalid JSON: {message}")]
    Json { location: Location, message: String },

    #[error(
        "{} and {} would both be shipped as module \"{name}\"; rename one of them",
        first.display(),
        second.display()
    )]
    NameCollision {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
}

/// Why an import specifier could not be turned into a module of the set.
#[derive(Debug, thiserror::Error)]
pub enum ImportProblem {
    #[error(
        "Node built-ins are not available; Convect runs functions in a JavaScript runtime without Node APIs"
    )]
    NodeBuiltin,

    #[error("{0}")]
    NotFound(String),

    #[error(
        "it would be shipped as module \"{name}\", which is already taken by {}; deduplicate the package (`npm dedupe`) or rename one of the files",
        holder.display()
    )]
    NameTaken { name: String, holder: PathBuf },

    #[error("only JavaScript, TypeScript and JSON files can be imported")]
    UnsupportedFileType,
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}
