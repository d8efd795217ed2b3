//! Rewrites the module specifier of every import and re-export (static and
//! dynamic) in a transformed program to the canonical name of the module it
//! refers to, so that the runtime's loader needs no resolution logic.
//!
//! Import attributes (`with { type: "json" }`) are dropped on the way: every
//! module of the set is JavaScript, JSON included.

use oxc::allocator::Allocator;
use oxc::ast::ast::{
    ExportAllDeclaration, ExportFromDeclaration, Expression, ImportDeclaration, ImportExpression,
    Program, StringLiteral,
};
use oxc::ast::builder::AstBuilder;
use oxc::ast_visit::{walk_mut, VisitMut};
use oxc::span::{GetSpan, Span};
use oxc::str::Str;

use crate::error::{BundleError, ImportProblem, Location};

/// Maps a specifier as written to the canonical name of its module.
pub(crate) type Rename<'f> = dyn FnMut(&str) -> Result<String, ImportProblem> + 'f;

/// Rewrites all specifiers of `program` in place, stopping at the first
/// failure. `locate` turns a span of the original source into a location.
pub(crate) fn rewrite_specifiers<'a>(
    allocator: &'a Allocator,
    program: &mut Program<'a>,
    rename: &mut Rename<'_>,
    locate: &dyn Fn(Span) -> Location,
) -> Result<(), BundleError> {
    let mut rewriter = Rewriter {
        ast: AstBuilder::new(allocator),
        rename,
        locate,
        error: None,
    };
    rewriter.visit_program(program);
    rewriter.error.map_or(Ok(()), Err)
}

struct Rewriter<'a, 'f> {
    ast: AstBuilder<'a>,
    rename: &'f mut Rename<'f>,
    locate: &'f dyn Fn(Span) -> Location,
    error: Option<BundleError>,
}

impl<'a> Rewriter<'a, '_> {
    fn canonical(&mut self, specifier: &str, span: Span) -> Option<Str<'a>> {
        if self.error.is_some() {
            return None;
        }
        match (self.rename)(specifier) {
            Ok(name) => Some(Str::from_str_in(&name, &self.ast)),
            Err(problem) => {
                self.error = Some(BundleError::Import {
                    location: (self.locate)(span),
                    specifier: specifier.to_string(),
                    problem,
                });
                None
            }
        }
    }

    fn rewrite_literal(&mut self, literal: &mut StringLiteral<'a>) {
        if let Some(name) = self.canonical(literal.value.as_str(), literal.span) {
            literal.value = name;
            literal.raw = None;
            literal.lone_surrogates = false;
        }
    }

    fn rewrite_dynamic(&mut self, source: &mut Expression<'a>) {
        match source {
            Expression::StringLiteral(literal) => self.rewrite_literal(literal),
            Expression::TemplateLiteral(template) if template.expressions.is_empty() => {
                let span = template.span;
                let text = template.quasis[0].value.cooked.map_or("", |s| s.as_str());
                if let Some(name) = self.canonical(text, span) {
                    *source = Expression::new_string_literal(span, name, None, &self.ast);
                }
            }
            other => {
                if self.error.is_none() {
                    self.error = Some(BundleError::DynamicImport {
                        location: (self.locate)(other.span()),
                    });
                }
            }
        }
    }
}

impl<'a> VisitMut<'a> for Rewriter<'a, '_> {
    fn visit_import_declaration(&mut self, decl: &mut ImportDeclaration<'a>) {
        self.rewrite_literal(&mut decl.source);
        decl.with_clause = None;
    }

    fn visit_export_from_declaration(&mut self, decl: &mut ExportFromDeclaration<'a>) {
        self.rewrite_literal(&mut decl.source);
        decl.with_clause = None;
    }

    fn visit_export_all_declaration(&mut self, decl: &mut ExportAllDeclaration<'a>) {
        self.rewrite_literal(&mut decl.source);
        decl.with_clause = None;
    }

    fn visit_import_expression(&mut self, expr: &mut ImportExpression<'a>) {
        self.rewrite_dynamic(&mut expr.source);
        expr.options = None;
        walk_mut::walk_import_expression(self, expr);
    }
}
