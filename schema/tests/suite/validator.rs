//! Validator JSON parsing, checking and error messages.

use std::collections::BTreeMap;

use convect_schema::{
    args_validator_from_json, returns_validator_from_json, DocumentId, FieldValidator, SchemaError,
    ValidationError, Validator, Value,
};
use serde_json::{json, Value as Json};

use crate::{obj, s};

fn tables() -> BTreeMap<String, u32> {
    [("users".to_owned(), 1), ("posts".to_owned(), 2)]
        .into_iter()
        .collect()
}

fn user_id() -> String {
    DocumentId {
        table_number: 1,
        internal_id: [7; 16],
    }
    .encode()
}

fn parse(j: Json) -> Validator {
    Validator::from_json(&j).unwrap()
}

fn check(j: Json, v: &Value) -> Result<(), ValidationError> {
    parse(j).check(v, &tables())
}

fn message(j: Json, v: &Value) -> String {
    check(j, v).unwrap_err().to_string()
}

#[test]
fn scalar_validators() {
    let cases: [(&str, Value, Value); 6] = [
        ("null", Value::Null, Value::Boolean(false)),
        ("number", Value::Float64(f64::NAN), Value::Int64(1)),
        ("bigint", Value::Int64(1), Value::Float64(1.0)),
        ("boolean", Value::Boolean(true), Value::Null),
        ("string", s("x"), Value::Bytes(vec![])),
        ("bytes", Value::Bytes(vec![1]), s("x")),
    ];
    for (kind, good, bad) in cases {
        assert_eq!(check(json!({"type": kind}), &good), Ok(()), "{kind}");
        assert!(check(json!({"type": kind}), &bad).is_err(), "{kind}");
    }
    assert_eq!(
        check(json!({"type": "any"}), &obj([("x", Value::Null)])),
        Ok(())
    );
    assert_eq!(check(json!({"type": "commitTs"}), &Value::Int64(9)), Ok(()));
}

#[test]
fn literal_validators() {
    assert_eq!(
        check(json!({"type": "literal", "value": "a"}), &s("a")),
        Ok(())
    );
    assert!(check(json!({"type": "literal", "value": "a"}), &s("b")).is_err());
    assert_eq!(
        check(
            json!({"type": "literal", "value": {"$integer": "BwAAAAAAAAA="}}),
            &Value::Int64(7)
        ),
        Ok(())
    );
    assert!(check(json!({"type": "literal", "value": 7}), &Value::Int64(7)).is_err());
    assert!(check(
        json!({"type": "literal", "value": {"$float": "AAAAAAAAAIA="}}),
        &Value::Float64(0.0)
    )
    .is_err());
    assert_eq!(
        message(json!({"type": "literal", "value": 3}), &Value::Int64(3)),
        "Value does not match validator.\nValue: 3n\nValidator: v.literal(3)"
    );
}

#[test]
fn id_validator_checks_table() {
    let id = json!({"type": "id", "tableName": "users"});
    assert_eq!(check(id.clone(), &s(&user_id())), Ok(()));
    let post = DocumentId {
        table_number: 2,
        internal_id: [7; 16],
    }
    .encode();
    assert!(check(id.clone(), &s(&post)).is_err());
    assert!(check(id.clone(), &s("not-an-id")).is_err());
    assert!(check(json!({"type": "id", "tableName": "nope"}), &s(&user_id())).is_err());
}

#[test]
fn object_validator_reports_nested_path() {
    let validator = json!({"type": "object", "value": {
        "count": {"fieldType": {"type": "number"}, "optional": false},
        "inner": {"fieldType": {"type": "array", "value": {"type": "object", "value": {
            "n": {"fieldType": {"type": "bigint"}, "optional": true}}}}, "optional": true}
    }});
    assert_eq!(
        check(validator.clone(), &obj([("count", Value::Float64(1.0))])),
        Ok(())
    );
    assert_eq!(
        message(validator.clone(), &obj([("count", s("x"))])),
        "Value does not match validator.\nPath: .count\nValue: \"x\"\nValidator: v.float64()"
    );
    let bad_inner = obj([
        ("count", Value::Float64(1.0)),
        (
            "inner",
            Value::Array(vec![obj([]), obj([("n", Value::Float64(2.0))])]),
        ),
    ]);
    assert_eq!(
        message(validator.clone(), &bad_inner),
        "Value does not match validator.\nPath: .inner[1].n\nValue: 2\nValidator: v.int64()"
    );
}

#[test]
fn object_validator_missing_and_extra_fields() {
    let validator = json!({"type": "object", "value": {"a": {"fieldType": {"type": "string"}, "optional": false}}});
    assert_eq!(
        message(validator.clone(), &obj([])),
        "Object is missing the required field `a`. Consider wrapping the field validator in `v.optional(...)` if this is expected.\n\nObject: {}\nValidator: v.object({a: v.string()})"
    );
    assert_eq!(
        message(validator, &obj([("a", s("x")), ("b", Value::Null)])),
        "Object contains extra field `b` that is not in the validator.\n\nObject: {a: \"x\", b: null}\nValidator: v.object({a: v.string()})"
    );
}

#[test]
fn record_validator_checks_keys_and_values() {
    let validator = json!({"type": "record", "keys": {"type": "id", "tableName": "users"},
        "values": {"fieldType": {"type": "boolean"}, "optional": false}});
    let id = user_id();
    assert_eq!(
        check(
            validator.clone(),
            &obj([(id.as_str(), Value::Boolean(true))])
        ),
        Ok(())
    );
    assert_eq!(
        message(validator.clone(), &obj([("k", Value::Boolean(true))])),
        "Value does not match validator.\nPath: .k\nValue: \"k\"\nValidator: v.id(\"users\")"
    );
    assert!(check(validator, &obj([(id.as_str(), Value::Null)])).is_err());
}

#[test]
fn union_validator_reports_the_union() {
    let validator = json!({"type": "union", "value": [{"type": "string"}, {"type": "null"}]});
    assert_eq!(check(validator.clone(), &Value::Null), Ok(()));
    assert_eq!(
        message(json!({"type": "array", "value": validator}), &Value::Array(vec![s("a"), Value::Int64(1)])),
        "Value does not match validator.\nPath: [1]\nValue: 1n\nValidator: v.union(v.string(), v.null())"
    );
    assert!(check(json!({"type": "union", "value": []}), &Value::Null).is_err());
}

#[test]
fn check_optional_treats_undefined_as_null() {
    let tables = tables();
    assert_eq!(
        parse(json!({"type": "null"})).check_optional(None, &tables),
        Ok(())
    );
    assert!(parse(json!({"type": "string"}))
        .check_optional(None, &tables)
        .is_err());
    assert_eq!(
        parse(json!({"type": "string"})).check_optional(Some(&s("x")), &tables),
        Ok(())
    );
}

#[test]
fn parses_every_kind() {
    let field = |validator, optional| FieldValidator {
        validator,
        optional,
    };
    let parsed = parse(json!({"type": "object", "value": {
        "a": {"fieldType": {"type": "record", "keys": {"type": "string"},
            "values": {"fieldType": {"type": "any"}, "optional": false}}, "optional": true},
        "b": {"fieldType": {"type": "union", "value": [{"type": "bytes"}, {"type": "literal", "value": true}]}}
    }}));
    let expected = Validator::Object(
        [
            (
                "a".to_owned(),
                field(
                    Validator::Record {
                        keys: Box::new(Validator::String),
                        values: Box::new(Validator::Any),
                    },
                    true,
                ),
            ),
            (
                "b".to_owned(),
                field(
                    Validator::Union(vec![
                        Validator::Bytes,
                        Validator::Literal(Value::Boolean(true)),
                    ]),
                    false,
                ),
            ),
        ]
        .into_iter()
        .collect(),
    );
    assert_eq!(parsed, expected);
    assert_eq!(parsed.to_string(), "v.object({a: v.optional(v.record(v.string(), v.any())), b: v.union(v.bytes(), v.literal(true))})");
}

fn parse_error(j: Json) -> String {
    Validator::from_json(&j).unwrap_err().to_string()
}

#[test]
fn rejects_malformed_validators() {
    assert_eq!(
        parse_error(json!({"type": "map"})),
        "invalid validator for the value at the top level: unknown validator type `map`"
    );
    assert_eq!(parse_error(json!("string")), "invalid validator for the value at the top level: expected a validator object, found `\"string\"`");
    assert_eq!(
        parse_error(json!({"type": "object", "value": {"a": {"fieldType": {"type": "array"}}}})),
        "invalid validator for the value at path .a: missing field `value`"
    );
    assert_eq!(
        parse_error(json!({"type": "object", "value": {"$a": {"fieldType": {"type": "null"}}}})),
        "invalid validator for the value at the top level: field name `$a`: field names may not start with `$`"
    );
    assert_eq!(
        parse_error(json!({"type": "record", "keys": {"type": "number"}, "values": {"fieldType": {"type": "null"}, "optional": false}})),
        "invalid validator for the value at the top level: record keys must be v.string(), v.id(...) or a union of them, not v.float64()"
    );
    assert!(parse_error(json!({"type": "record", "keys": {"type": "string"}, "values": {"fieldType": {"type": "null"}, "optional": true}}))
        .ends_with("record values cannot be optional"));
    assert!(parse_error(json!({"type": "literal", "value": null}))
        .ends_with("a literal must be a string, number, bigint or boolean, not null"));
    assert!(
        parse_error(json!({"type": "literal", "value": {"$bad": 1}})).contains("invalid literal")
    );
}

#[test]
fn function_exports_from_npm_package() {
    let exports: Json =
        serde_json::from_str(include_str!("../fixtures/function_exports.json")).unwrap();
    let args =
        |name: &str| args_validator_from_json(exports[name]["args"].as_str().unwrap()).unwrap();
    let returns = |name: &str| {
        returns_validator_from_json(exports[name]["returns"].as_str().unwrap()).unwrap()
    };
    assert_eq!(args("noArgs"), None);
    assert_eq!(returns("noArgs"), None);
    assert_eq!(args("emptyArgs"), Some(Validator::Object(BTreeMap::new())));
    let typed = args("typed").unwrap();
    assert_eq!(
        typed.check(
            &obj([("x", Value::Float64(1.0)), ("y", s(&user_id()))]),
            &tables()
        ),
        Ok(())
    );
    assert_eq!(returns("typed"), Some(Validator::Null));
    assert!(matches!(args("unionArgs"), Some(Validator::Union(_))));
    assert!(matches!(returns("unionArgs"), Some(Validator::Object(_))));
    assert_eq!(args_validator_from_json("null").unwrap(), None);
    assert_eq!(args_validator_from_json("{}").unwrap(), None);
    assert!(matches!(
        args_validator_from_json("{"),
        Err(SchemaError::Json(_))
    ));
}
