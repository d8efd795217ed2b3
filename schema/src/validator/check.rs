//! Checking values against validators, with errors that name the path, the
//! offending value and the validator it failed, worded like Convex's own.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use super::{FieldValidator, IdTables, Validator};
use crate::display::for_error;
use crate::id::DocumentId;
use crate::path::{in_field, in_index};
use crate::value::Value;

/// A value that does not match its validator. The rendered value and
/// validator are truncated to keep messages bounded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("Value does not match validator.\n{}Value: {value}\nValidator: {validator}", PathLine(.path))]
    Mismatch {
        path: String,
        value: String,
        validator: String,
    },
    #[error(
        "Object is missing the required field `{field}`. Consider wrapping the field validator in `v.optional(...)` if this is expected.\n\n{}Object: {object}\nValidator: {validator}",
        PathLine(.path)
    )]
    MissingField {
        path: String,
        field: String,
        object: String,
        validator: String,
    },
    #[error(
        "Object contains extra field `{field}` that is not in the validator.\n\n{}Object: {object}\nValidator: {validator}",
        PathLine(.path)
    )]
    ExtraField {
        path: String,
        field: String,
        object: String,
        validator: String,
    },
}

/// "Path: .a.b" on its own line, omitted for the top-level value.
struct PathLine<'a>(&'a str);

impl fmt::Display for PathLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            Ok(())
        } else {
            writeln!(f, "Path: {}", self.0)
        }
    }
}

impl Validator {
    /// Checks `v` against this validator; `ids` resolves `v.id(table)`.
    pub fn check(&self, v: &Value, ids: &dyn IdTables) -> Result<(), ValidationError> {
        check_at(self, v, ids, &mut String::new()).map_err(Failure::into_error)
    }

    /// Checks a value that may be `undefined` (`None`). Convex serializes an
    /// `undefined` function result as `null` before applying the `returns`
    /// validator (`result === undefined ? null : result` in
    /// registration_impl.ts), so `None` is checked exactly like `Null`.
    pub fn check_optional(
        &self,
        v: Option<&Value>,
        ids: &dyn IdTables,
    ) -> Result<(), ValidationError> {
        self.check(v.unwrap_or(&Value::Null), ids)
    }
}

/// A failure kept as references, so union members that fail cost nothing
/// to report; only the failure that escapes is rendered.
struct Failure<'a> {
    path: String,
    kind: FailureKind,
    validator: &'a Validator,
    value: Cow<'a, Value>,
}

enum FailureKind {
    Mismatch,
    MissingField(String),
    ExtraField(String),
}

impl Failure<'_> {
    fn into_error(self) -> ValidationError {
        let (value, validator, path) =
            (for_error(&self.value), for_error(self.validator), self.path);
        match self.kind {
            FailureKind::Mismatch => ValidationError::Mismatch {
                path,
                value,
                validator,
            },
            FailureKind::MissingField(field) => ValidationError::MissingField {
                path,
                field,
                object: value,
                validator,
            },
            FailureKind::ExtraField(field) => ValidationError::ExtraField {
                path,
                field,
                object: value,
                validator,
            },
        }
    }
}

type Outcome<'a> = Result<(), Failure<'a>>;

fn check_at<'a>(
    validator: &'a Validator,
    value: &'a Value,
    ids: &dyn IdTables,
    path: &mut String,
) -> Outcome<'a> {
    let matches = match (validator, value) {
        (Validator::Any, _)
        | (Validator::Null, Value::Null)
        | (Validator::Float64, Value::Float64(_))
        | (Validator::Int64 | Validator::CommitTs, Value::Int64(_))
        | (Validator::Boolean, Value::Boolean(_))
        | (Validator::String, Value::String(_))
        | (Validator::Bytes, Value::Bytes(_)) => true,
        (Validator::Literal(expected), _) => expected == value,
        (Validator::Id(table), Value::String(s)) => is_id_of(s, table, ids),
        (Validator::Array(element), Value::Array(items)) => {
            return check_items(element, items, ids, path)
        }
        (Validator::Object(fields), Value::Object(object)) => {
            return check_object(validator, fields, value, object, ids, path)
        }
        (Validator::Record { keys, values }, Value::Object(object)) => {
            return check_record(keys, values, object, ids, path)
        }
        (Validator::Union(members), _) => members
            .iter()
            .any(|m| check_at(m, value, ids, path).is_ok()),
        _ => false,
    };
    if matches {
        Ok(())
    } else {
        Err(Failure {
            path: path.clone(),
            kind: FailureKind::Mismatch,
            validator,
            value: Cow::Borrowed(value),
        })
    }
}

fn is_id_of(s: &str, table: &str, ids: &dyn IdTables) -> bool {
    let expected = ids.table_number(table);
    DocumentId::decode(s).is_ok_and(|id| Some(id.table_number) == expected)
}

fn check_items<'a>(
    element: &'a Validator,
    items: &'a [Value],
    ids: &dyn IdTables,
    path: &mut String,
) -> Outcome<'a> {
    for (i, item) in items.iter().enumerate() {
        in_index(path, i, |p| check_at(element, item, ids, p))?;
    }
    Ok(())
}

fn check_object<'a>(
    validator: &'a Validator,
    fields: &'a BTreeMap<String, FieldValidator>,
    value: &'a Value,
    object: &'a BTreeMap<String, Value>,
    ids: &dyn IdTables,
    path: &mut String,
) -> Outcome<'a> {
    let failure = |kind| Failure {
        path: path.clone(),
        kind,
        validator,
        value: Cow::Borrowed(value),
    };
    if let Some(extra) = object.keys().find(|k| !fields.contains_key(*k)) {
        return Err(failure(FailureKind::ExtraField(extra.clone())));
    }
    if let Some((missing, _)) = fields
        .iter()
        .find(|(k, f)| !f.optional && !object.contains_key(*k))
    {
        return Err(failure(FailureKind::MissingField(missing.clone())));
    }
    for (name, field) in fields {
        if let Some(item) = object.get(name) {
            in_field(path, name, |p| check_at(&field.validator, item, ids, p))?;
        }
    }
    Ok(())
}

fn check_record<'a>(
    keys: &'a Validator,
    values: &'a Validator,
    object: &'a BTreeMap<String, Value>,
    ids: &dyn IdTables,
    path: &mut String,
) -> Outcome<'a> {
    for (key, item) in object {
        in_field(path, key, |p| {
            check_key(keys, key, ids, p)?;
            check_at(values, item, ids, p)
        })?;
    }
    Ok(())
}

/// Record keys are plain strings in the object, so a failing key is reported
/// through an owned string value.
fn check_key<'a>(
    keys: &'a Validator,
    key: &str,
    ids: &dyn IdTables,
    path: &mut String,
) -> Outcome<'a> {
    let key_value = Value::String(key.to_owned());
    if check_at(keys, &key_value, ids, path).is_ok() {
        return Ok(());
    }
    let value = Cow::Owned(key_value);
    Err(Failure {
        path: path.clone(),
        kind: FailureKind::Mismatch,
        validator: keys,
        value,
    })
}
