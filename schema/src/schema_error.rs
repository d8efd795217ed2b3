//! Errors for validator JSON and schema exports that Convex would refuse.

use crate::path::At;

/// Why a validator or schema definition is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("malformed {what}: {message}")]
    Malformed { what: &'static str, message: String },
    #[error("invalid validator for the value {}: {message}", At(.path))]
    InvalidValidator { path: String, message: String },
    #[error("invalid table name `{name}`: {reason}")]
    InvalidTableName { name: String, reason: &'static str },
    #[error("table `{0}` is defined more than once")]
    DuplicateTable(String),
    #[error("invalid document validator: {0}")]
    InvalidDocumentType(String),
    #[error("invalid index name `{index}`: {reason}")]
    InvalidIndexName { index: String, reason: &'static str },
    #[error("there are two or more definitions of index `{0}`")]
    DuplicateIndex(String),
    #[error("index `{index}`: {reason}")]
    InvalidIndex { index: String, reason: String },
    #[error("indexes `{first}` and `{second}` have the same fields; indexes must be unique within a table")]
    IndexesNotUnique { first: String, second: String },
    #[error("{count} indexes are defined; a table may have at most {limit}")]
    TooManyIndexes { count: usize, limit: usize },
    #[error("in table `{table}`: {source}")]
    InTable {
        table: String,
        source: Box<SchemaError>,
    },
}
