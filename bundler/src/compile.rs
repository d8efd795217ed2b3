//! Turns one source file into the text of an ES module: TypeScript and JSX
//! are lowered to plain JavaScript with oxc, every import specifier is
//! rewritten to a canonical module name, and JSON becomes a default export.

use std::path::Path;

use oxc::allocator::Allocator;
use oxc::codegen::Codegen;
use oxc::diagnostics::{Diagnostics, OxcDiagnostic};
use oxc::parser::Parser;
use oxc::semantic::{Scoping, SemanticBuilder};
use oxc::span::{SourceType, Span};
use oxc::syntax::module_record::ModuleRecord;
use oxc::transformer::{ESTarget, TransformOptions, Transformer};

use crate::error::{BundleError, Location};
use crate::rewrite::{rewrite_specifiers, Rename};

/// Globals whose use, in a file without `import`/`export`, marks CommonJS.
const COMMONJS_GLOBALS: &[&str] = &["require", "module", "exports"];

/// Compiles `text`, read from `path`, asking `rename` for the canonical name
/// of each module it imports.
pub(crate) fn compile(
    path: &Path,
    text: &str,
    rename: &mut Rename<'_>,
) -> Result<String, BundleError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => json_module(path, text),
        Some("cjs" | "cts") => Err(BundleError::CommonJs {
            path: path.to_path_buf(),
        }),
        _ => script_module(path, text, rename),
    }
}

fn json_module(path: &Path, text: &str) -> Result<String, BundleError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|err| BundleError::Json {
        location: Location {
            file: path.to_path_buf(),
            line: err.line(),
            column: err.column(),
        },
        message: err.to_string(),
    })?;
    Ok(format!("export default {value};\n"))
}

fn script_module(path: &Path, text: &str, rename: &mut Rename<'_>) -> Result<String, BundleError> {
    let allocator = Allocator::default();
    let locate = |span: Span| Location::at_offset(path, text, span.start as usize);
    let source_type = SourceType::from_path(path)
        .unwrap_or_default()
        .with_module(true);
    let parsed = Parser::new(&allocator, text, source_type).parse();
    first_error(&parsed.diagnostics, path, text)?;
    let mut program = parsed.program;
    let semantic = SemanticBuilder::new_compiler()
        .with_excess_capacity(2.0)
        .with_enum_eval(true)
        .with_check_syntax_error(true)
        .build(&program);
    first_error(&semantic.diagnostics, path, text)?;
    let scoping = semantic.semantic.into_scoping();
    reject_commonjs(path, &parsed.module_record, &scoping)?;
    let transformed = Transformer::new(&allocator, path, &transform_options())
        .build_with_scoping(scoping, &mut program);
    first_error(&transformed.diagnostics, path, text)?;
    rewrite_specifiers(&allocator, &mut program, rename, &locate)?;
    Ok(Codegen::new().build(&program).code)
}

/// QuickJS implements ES2022 and more, so only type syntax and JSX need
/// lowering; keeping the output close to the input keeps stack traces legible.
fn transform_options() -> TransformOptions {
    TransformOptions::from(ESTarget::ES2022)
}

fn first_error(diagnostics: &Diagnostics, path: &Path, text: &str) -> Result<(), BundleError> {
    match diagnostics.errors().next() {
        Some(diagnostic) => Err(syntax_error(diagnostic, path, text)),
        None => Ok(()),
    }
}

fn syntax_error(diagnostic: &OxcDiagnostic, path: &Path, text: &str) -> BundleError {
    let labels = &diagnostic.labels;
    let label = labels.iter().find(|l| l.primary()).or(labels.first());
    let message = match label.and_then(|l| l.label()) {
        Some(note) => format!("{} ({note})", diagnostic.message),
        None => diagnostic.message.to_string(),
    };
    let offset = label.map_or(0, |l| l.offset());
    BundleError::Syntax {
        location: Location::at_offset(path, text, offset as usize),
        message,
    }
}

fn reject_commonjs(
    path: &Path,
    record: &ModuleRecord<'_>,
    scoping: &Scoping,
) -> Result<(), BundleError> {
    let uses_commonjs = scoping
        .root_unresolved_references()
        .keys()
        .any(|name| COMMONJS_GLOBALS.contains(&name.as_str()));
    if uses_commonjs && !record.has_module_syntax {
        return Err(BundleError::CommonJs {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn convex_esm_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                convex_esm_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "js") {
                out.push(path);
            }
        }
    }

    /// The published `convex` ESM build is already JavaScript; it must pass
    /// through the pipeline without complaint.
    #[test]
    fn convex_esm_build_compiles_cleanly() {
        let esm = Path::new(env!("CARGO_MANIFEST_DIR")).join("../node_modules/convex/dist/esm");
        if !esm.is_dir() {
            eprintln!(
                "skipped: {} missing (run `npm ci` at the repository root)",
                esm.display()
            );
            return;
        }
        let mut files = Vec::new();
        convex_esm_files(&esm, &mut files);
        assert!(files.len() > 100, "only {} files", files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut keep = |specifier: &str| Ok(specifier.to_string());
            if let Err(err) = compile(&file, &text, &mut keep) {
                panic!("{err}");
            }
        }
    }
}
