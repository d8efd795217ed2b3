//! `convex_encoded_json`: golden encodings from the npm package, round trips
//! and malformed inputs.

use convect_schema::{object_from_json, Value, ValueError};
use serde_json::{json, Value as Json};

use crate::{obj, s};

fn fixture() -> Json {
    serde_json::from_str(include_str!("../fixtures/value_encodings.json")).unwrap()
}

fn expected_values() -> Vec<(&'static str, Value)> {
    let bytes = |b: &[u8]| Value::Bytes(b.to_vec());
    vec![
        ("null", Value::Null),
        ("true", Value::Boolean(true)),
        ("int_zero", Value::Int64(0)),
        ("int_min", Value::Int64(i64::MIN)),
        ("int_max", Value::Int64(i64::MAX)),
        ("int_minus_one", Value::Int64(-1)),
        ("float", Value::Float64(1.5)),
        ("float_int", Value::Float64(3.0)),
        ("float_neg_zero", Value::Float64(-0.0)),
        ("float_nan", Value::Float64(f64::NAN)),
        ("float_inf", Value::Float64(f64::INFINITY)),
        ("float_neg_inf", Value::Float64(f64::NEG_INFINITY)),
        ("float_tiny", Value::Float64(5e-324)),
        ("string", s("héllo \u{0} \"q\"")),
        ("bytes_empty", bytes(&[])),
        ("bytes", bytes(&[0, 1, 2, 255])),
        (
            "array",
            Value::Array(vec![
                Value::Null,
                Value::Int64(1),
                Value::Float64(2.5),
                s("x"),
                Value::Array(vec![bytes(&[7])]),
            ]),
        ),
        (
            "object",
            obj([
                ("b", obj([("c", Value::Float64(-0.0))])),
                ("a", Value::Array(vec![Value::Boolean(true)])),
                ("z", s("")),
            ]),
        ),
    ]
}

/// JSON equality where numbers compare as f64: serde_json writes 3.0 for the
/// float 3 where JavaScript writes 3, and both parse to the same float.
fn same_json(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_json(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn decodes_npm_package_encodings() {
    let fixture = fixture();
    for (name, expected) in expected_values() {
        let decoded = Value::from_json(&fixture[name]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(decoded, expected, "{name}");
    }
}

#[test]
fn encodes_like_npm_package() {
    let fixture = fixture();
    for (name, value) in expected_values() {
        assert!(
            same_json(&value.to_json(), &fixture[name]),
            "{name}: {} vs {}",
            value.to_json(),
            fixture[name]
        );
    }
}

#[test]
fn round_trips_through_text() {
    for (name, value) in expected_values() {
        let text = serde_json::to_string(&value.to_json()).unwrap();
        let back = Value::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, value, "{name}");
    }
}

#[test]
fn accepts_unpadded_base64() {
    assert_eq!(
        Value::from_json(&json!({"$bytes": "AAEC/w"})).unwrap(),
        Value::Bytes(vec![0, 1, 2, 255])
    );
}

#[test]
fn negative_zero_number_stays_negative() {
    for text in ["-0.0", "-0"] {
        let value = Value::from_json(&serde_json::from_str(text).unwrap()).unwrap();
        assert!(
            matches!(value, Value::Float64(x) if x == 0.0 && x.is_sign_negative()),
            "{text}"
        );
    }
}

fn error(j: Json) -> String {
    Value::from_json(&j).unwrap_err().to_string()
}

#[test]
fn rejects_malformed_integers() {
    assert_eq!(
        error(json!({"$integer": 5})),
        "malformed `$integer` at the top level: expected a base64 string"
    );
    assert_eq!(
        error(json!({"a": {"$integer": "AAAA"}})),
        "malformed `$integer` at path .a: expected 8 bytes, received 3"
    );
    assert!(error(json!([{"$integer": "!!!!"}]))
        .starts_with("malformed `$integer` at path [0]: invalid base64"));
}

#[test]
fn rejects_plain_floats_in_float_encoding() {
    let one_and_half = convect_schema::Value::Float64(1.5);
    let bytes = base64_of(&1.5f64.to_le_bytes());
    assert_eq!(
        error(json!({"$float": bytes})),
        "malformed `$float` at the top level: float 1.5 must be encoded as a plain JSON number"
    );
    assert_eq!(one_and_half.to_json(), json!(1.5));
}

fn base64_of(bytes: &[u8]) -> String {
    // Only used to build malformed inputs: a $bytes value encodes the same way.
    Value::Bytes(bytes.to_vec()).to_json()["$bytes"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn rejects_unknown_encodings_and_dollar_fields() {
    assert_eq!(
        error(json!({"$set": []})),
        "object at the top level has the single key `$set`, which is not a Convex encoding (expected `$integer`, `$float` or `$bytes`)"
    );
    assert_eq!(
        error(json!({"a": {"b": {"$x": 1, "y": 2}}})),
        "field name `$x` at path .a.b: field names may not start with `$`"
    );
    assert!(matches!(
        Value::from_json(&json!({"$integer": "AAAAAAAAAAA=", "b": 1})),
        Err(ValueError::ReservedFieldName { .. })
    ));
}

#[test]
fn object_from_json_requires_an_object() {
    assert_eq!(
        object_from_json(&json!([1])).unwrap_err().to_string(),
        "expected a JSON object, found array"
    );
    assert_eq!(
        object_from_json(&json!({"$integer": "AAAAAAAAAAA="}))
            .unwrap_err()
            .to_string(),
        "expected a JSON object, found int64"
    );
    let fields = object_from_json(&json!({"a": 1})).unwrap();
    assert_eq!(fields["a"], Value::Float64(1.0));
}
