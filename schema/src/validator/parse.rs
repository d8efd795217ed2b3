//! Reading validator JSON (the `json` getters of values/validators.ts).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use super::{FieldValidator, Validator};
use crate::limits::field_name_problem;
use crate::path::{in_field, in_segment};
use crate::schema_error::SchemaError;
use crate::value::Value;

type Object = Map<String, Json>;

impl Validator {
    /// Parses validator JSON such as `{"type":"array","value":{"type":"string"}}`.
    pub fn from_json(j: &Json) -> Result<Validator, SchemaError> {
        parse(j, &mut String::new())
    }
}

fn parse(j: &Json, path: &mut String) -> Result<Validator, SchemaError> {
    let obj = j
        .as_object()
        .ok_or_else(|| invalid(path, format!("expected a validator object, found `{j}`")))?;
    let kind = obj.get("type").and_then(Json::as_str);
    let kind = kind.ok_or_else(|| invalid(path, "missing string field `type`".to_owned()))?;
    Ok(match kind {
        "null" => Validator::Null,
        "number" => Validator::Float64,
        "bigint" => Validator::Int64,
        "commitTs" => Validator::CommitTs,
        "boolean" => Validator::Boolean,
        "string" => Validator::String,
        "bytes" => Validator::Bytes,
        "any" => Validator::Any,
        "literal" => Validator::Literal(parse_literal(member(obj, "value", path)?, path)?),
        "id" => Validator::Id(parse_table_name(member(obj, "tableName", path)?, path)?),
        "array" => {
            let element = member(obj, "value", path)?;
            Validator::Array(Box::new(in_segment(path, "[]", |p| parse(element, p))?))
        }
        "object" => Validator::Object(parse_fields(member(obj, "value", path)?, path)?),
        "record" => parse_record(obj, path)?,
        "union" => Validator::Union(parse_members(member(obj, "value", path)?, path)?),
        other => return Err(invalid(path, format!("unknown validator type `{other}`"))),
    })
}

fn parse_literal(j: &Json, path: &str) -> Result<Value, SchemaError> {
    let value = Value::from_json(j).map_err(|e| invalid(path, format!("invalid literal: {e}")))?;
    match value {
        Value::String(_) | Value::Float64(_) | Value::Int64(_) | Value::Boolean(_) => Ok(value),
        other => Err(invalid(
            path,
            format!(
                "a literal must be a string, number, bigint or boolean, not {}",
                other.type_name()
            ),
        )),
    }
}

fn parse_table_name(j: &Json, path: &str) -> Result<String, SchemaError> {
    j.as_str().map(str::to_owned).ok_or_else(|| {
        invalid(
            path,
            "`tableName` of an id validator must be a string".to_owned(),
        )
    })
}

fn parse_fields(
    j: &Json,
    path: &mut String,
) -> Result<BTreeMap<String, FieldValidator>, SchemaError> {
    let fields = j.as_object().ok_or_else(|| {
        invalid(
            path,
            "object validator `value` must be an object".to_owned(),
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, field) in fields {
        if let Some(reason) = field_name_problem(name) {
            return Err(invalid(path, format!("field name `{name}`: {reason}")));
        }
        let parsed = in_field(path, name, |p| parse_field(field, p))?;
        out.insert(name.clone(), parsed);
    }
    Ok(out)
}

/// Reads `{"fieldType": V, "optional": bool}`; a missing `optional` means
/// required.
fn parse_field(j: &Json, path: &mut String) -> Result<FieldValidator, SchemaError> {
    let obj = j.as_object().ok_or_else(|| {
        invalid(
            path,
            "expected `{\"fieldType\": .., \"optional\": ..}`".to_owned(),
        )
    })?;
    let validator = parse(member(obj, "fieldType", path)?, path)?;
    let optional = match obj.get("optional") {
        None => false,
        Some(flag) => flag
            .as_bool()
            .ok_or_else(|| invalid(path, "`optional` must be a boolean".to_owned()))?,
    };
    Ok(FieldValidator {
        validator,
        optional,
    })
}

fn parse_record(obj: &Object, path: &mut String) -> Result<Validator, SchemaError> {
    let keys = parse(member(obj, "keys", path)?, path)?;
    if !is_record_key(&keys) {
        return Err(invalid(
            path,
            format!("record keys must be v.string(), v.id(...) or a union of them, not {keys}"),
        ));
    }
    let values = in_segment(path, "[*]", |p| parse_field(member(obj, "values", p)?, p))?;
    if values.optional {
        return Err(invalid(path, "record values cannot be optional".to_owned()));
    }
    Ok(Validator::Record {
        keys: Box::new(keys),
        values: Box::new(values.validator),
    })
}

fn is_record_key(keys: &Validator) -> bool {
    match keys {
        Validator::String | Validator::Id(_) => true,
        Validator::Union(members) => members.iter().all(is_record_key),
        _ => false,
    }
}

fn parse_members(j: &Json, path: &mut String) -> Result<Vec<Validator>, SchemaError> {
    let members = j
        .as_array()
        .ok_or_else(|| invalid(path, "union validator `value` must be an array".to_owned()))?;
    members.iter().map(|m| parse(m, path)).collect()
}

fn member<'a>(obj: &'a Object, key: &str, path: &str) -> Result<&'a Json, SchemaError> {
    obj.get(key)
        .ok_or_else(|| invalid(path, format!("missing field `{key}`")))
}

fn invalid(path: &str, message: String) -> SchemaError {
    SchemaError::InvalidValidator {
        path: path.to_owned(),
        message,
    }
}
