//! Convex validators (`v.*`) as exported in validator JSON: parsing them,
//! checking values against them, and rendering them as `v.…` in errors.

mod check;
mod display;
mod parse;

use std::collections::{BTreeMap, HashMap};

use crate::schema_error::SchemaError;
use crate::value::Value;

pub use check::ValidationError;

/// A validator from Convex's validator JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Validator {
    Null,
    /// `v.number()` / `v.float64()`, exported as `"number"`.
    Float64,
    /// `v.int64()` / `v.bigint()`, exported as `"bigint"`.
    Int64,
    /// `v.commitTs()`: the commit-timestamp field, an int64 once stored.
    CommitTs,
    Boolean,
    String,
    Bytes,
    Any,
    /// A string, float64, int64 or boolean that must match exactly.
    Literal(Value),
    /// A string that is the ID of a document in the named table.
    Id(String),
    Array(Box<Validator>),
    Object(BTreeMap<String, FieldValidator>),
    Record {
        keys: Box<Validator>,
        values: Box<Validator>,
    },
    Union(Vec<Validator>),
}

/// One field of an object validator.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldValidator {
    pub validator: Validator,
    pub optional: bool,
}

/// Resolves table names for `v.id(table)` checks; the engine implements it
/// over its table registry.
pub trait IdTables {
    fn table_number(&self, table_name: &str) -> Option<u32>;
}

impl IdTables for BTreeMap<String, u32> {
    fn table_number(&self, table_name: &str) -> Option<u32> {
        self.get(table_name).copied()
    }
}

impl IdTables for HashMap<String, u32> {
    fn table_number(&self, table_name: &str) -> Option<u32> {
        self.get(table_name).copied()
    }
}

/// Parses a function's `exportArgs()` string. `None` means the arguments are
/// not validated: the npm package exports `{"type":"any"}` when a function
/// declares no `args`; `null` and `{}` are accepted as the same.
/// `{"type":"object","value":{}}` (declared `args: {}`) is a real validator
/// that only accepts an empty object.
pub fn args_validator_from_json(s: &str) -> Result<Option<Validator>, SchemaError> {
    optional_validator_from_json(s)
}

/// Parses a function's `exportReturns()` string. `None` (exported as `null`
/// when a function declares no `returns`) means the result is not validated.
pub fn returns_validator_from_json(s: &str) -> Result<Option<Validator>, SchemaError> {
    optional_validator_from_json(s)
}

fn optional_validator_from_json(s: &str) -> Result<Option<Validator>, SchemaError> {
    let json: serde_json::Value =
        serde_json::from_str(s).map_err(|e| SchemaError::Json(e.to_string()))?;
    let unvalidated = json.is_null() || json.as_object().is_some_and(|o| o.is_empty());
    if unvalidated {
        return Ok(None);
    }
    match Validator::from_json(&json)? {
        Validator::Any => Ok(None),
        validator => Ok(Some(validator)),
    }
}
