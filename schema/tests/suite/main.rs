//! Tests for convect-schema: example-based cases per module, golden fixtures
//! captured from the real `convex` npm package, and property tests.

mod id;
mod json;
mod key;
mod limits;
mod order;
mod props;
mod schema;
mod strategies;
mod validator;

use std::collections::BTreeMap;

use convect_schema::Value;

/// Builds an object value from `(key, value)` pairs.
pub fn obj<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(fields_of(fields))
}

pub fn fields_of<const N: usize>(fields: [(&str, Value); N]) -> BTreeMap<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub fn s(text: &str) -> Value {
    Value::String(text.to_owned())
}
