//! Convex's published size and shape limits, and the field-name rules, as
//! checks over documents (1 MiB, no user `_` fields at top level) and over
//! function arguments and results (16 MiB).

use std::collections::BTreeMap;

use crate::path::{in_field, in_index, At};
use crate::value::Value;

pub const MAX_DOCUMENT_BYTES: usize = 1 << 20;
pub const MAX_VALUE_BYTES: usize = 16 << 20;
pub const MAX_NESTING: usize = 16;
pub const MAX_OBJECT_FIELDS: usize = 1024;
pub const MAX_ARRAY_LEN: usize = 8192;
pub const MAX_FIELD_NAME_LEN: usize = 1024;

/// Why a document or value breaks a limit or a field-name rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("{what} is too large: {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("value {} is nested more than {MAX_NESTING} levels deep", At(.path))]
    TooDeep { path: String },
    #[error("object {} has {count} fields; the limit is {MAX_OBJECT_FIELDS}", At(.path))]
    TooManyFields { path: String, count: usize },
    #[error("array {} has {len} elements; the limit is {MAX_ARRAY_LEN}", At(.path))]
    ArrayTooLong { path: String, len: usize },
    #[error("field name `{name}` {}: {reason}", At(.path))]
    InvalidFieldName {
        path: String,
        name: String,
        reason: &'static str,
    },
}

/// Approximate serialized size, by Convex's own formula (values/size.ts):
/// one type byte per value, eight for numbers, a terminator for strings,
/// bytes, arrays and objects, and each field name plus a terminator.
pub fn value_size(v: &Value) -> usize {
    match v {
        Value::Null | Value::Boolean(_) => 1,
        Value::Int64(_) | Value::Float64(_) => 9,
        Value::String(s) => 2 + s.len(),
        Value::Bytes(b) => 2 + b.len(),
        Value::Array(items) => 2 + items.iter().map(value_size).sum::<usize>(),
        Value::Object(fields) => 2 + fields_size(fields),
    }
}

/// Checks a user-supplied document body before system fields are added.
pub fn check_document(doc: &BTreeMap<String, Value>) -> Result<(), LimitError> {
    if let Some(name) = doc.keys().find(|k| k.starts_with('_')) {
        return Err(LimitError::InvalidFieldName {
            path: String::new(),
            name: name.clone(),
            reason: "top-level field names starting with `_` are reserved for system fields",
        });
    }
    let mut path = String::new();
    check_fields(doc, 1, &mut path)?;
    check_size("document", 2 + fields_size(doc), MAX_DOCUMENT_BYTES)
}

/// Checks a function argument or return value.
pub fn check_value(v: &Value) -> Result<(), LimitError> {
    check_shape(v, 0, &mut String::new())?;
    check_size("value", value_size(v), MAX_VALUE_BYTES)
}

/// Why `name` is not a usable field name, if it is not; shared with
/// validator parsing so schemas obey the same rules as documents.
pub(crate) fn field_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("field names may not be empty")
    } else if name.starts_with('$') {
        Some("field names may not start with `$`")
    } else if name.len() > MAX_FIELD_NAME_LEN {
        Some("field names may be at most 1024 characters long")
    } else if !name.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        Some("field names may only contain printable ASCII characters")
    } else {
        None
    }
}

fn fields_size(fields: &BTreeMap<String, Value>) -> usize {
    fields
        .iter()
        .map(|(k, v)| k.len() + 1 + value_size(v))
        .sum()
}

fn check_size(what: &'static str, size: usize, limit: usize) -> Result<(), LimitError> {
    if size > limit {
        return Err(LimitError::TooLarge { what, size, limit });
    }
    Ok(())
}

/// `depth` counts enclosing arrays and objects, the value itself included.
/// Recursion stops at the first violation, so it is bounded by MAX_NESTING.
fn check_shape(v: &Value, depth: usize, path: &mut String) -> Result<(), LimitError> {
    match v {
        Value::Array(items) => check_items(items, depth + 1, path),
        Value::Object(fields) => check_fields(fields, depth + 1, path),
        _ => Ok(()),
    }
}

fn check_depth(depth: usize, path: &str) -> Result<(), LimitError> {
    if depth > MAX_NESTING {
        return Err(LimitError::TooDeep {
            path: path.to_owned(),
        });
    }
    Ok(())
}

fn check_items(items: &[Value], depth: usize, path: &mut String) -> Result<(), LimitError> {
    check_depth(depth, path)?;
    if items.len() > MAX_ARRAY_LEN {
        return Err(LimitError::ArrayTooLong {
            path: path.clone(),
            len: items.len(),
        });
    }
    for (i, item) in items.iter().enumerate() {
        in_index(path, i, |p| check_shape(item, depth, p))?;
    }
    Ok(())
}

fn check_fields(
    fields: &BTreeMap<String, Value>,
    depth: usize,
    path: &mut String,
) -> Result<(), LimitError> {
    check_depth(depth, path)?;
    if fields.len() > MAX_OBJECT_FIELDS {
        return Err(LimitError::TooManyFields {
            path: path.clone(),
            count: fields.len(),
        });
    }
    for (name, item) in fields {
        if let Some(reason) = field_name_problem(name) {
            return Err(LimitError::InvalidFieldName {
                path: path.clone(),
                name: name.clone(),
                reason,
            });
        }
        in_field(path, name, |p| check_shape(item, depth, p))?;
    }
    Ok(())
}
