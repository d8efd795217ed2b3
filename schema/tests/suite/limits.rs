//! Size, shape and field-name limits for documents and function values.

use convect_schema::{
    check_document, check_value, value_size, LimitError, Value, MAX_ARRAY_LEN, MAX_OBJECT_FIELDS,
};

use crate::{fields_of, obj, s};

fn nested(depth: usize) -> Value {
    (0..depth).fold(Value::Null, |inner, _| Value::Array(vec![inner]))
}

#[test]
fn sizes_follow_convex_formula() {
    assert_eq!(value_size(&Value::Null), 1);
    assert_eq!(value_size(&Value::Int64(5)), 9);
    assert_eq!(value_size(&s("héllo")), 2 + 6);
    assert_eq!(value_size(&Value::Bytes(vec![1, 2])), 4);
    assert_eq!(value_size(&Value::Array(vec![Value::Boolean(true)])), 3);
    assert_eq!(value_size(&obj([("ab", Value::Float64(1.0))])), 2 + 3 + 9);
}

#[test]
fn accepts_ordinary_documents() {
    let doc = fields_of([
        ("name", s("x")),
        (
            "nested",
            obj([("_private", Value::Null), ("a b", nested(14))]),
        ),
    ]);
    assert_eq!(check_document(&doc), Ok(()));
}

#[test]
fn rejects_reserved_and_malformed_field_names() {
    let msg = |doc| check_document(&doc).unwrap_err().to_string();
    assert_eq!(
        msg(fields_of([("_id", s("x"))])),
        "field name `_id` at the top level: top-level field names starting with `_` are reserved for system fields"
    );
    assert_eq!(
        msg(fields_of([("a", obj([("b", obj([("$x", Value::Null)]))]))])),
        "field name `$x` at path .a.b: field names may not start with `$`"
    );
    assert_eq!(
        msg(fields_of([("", Value::Null)])),
        "field name `` at the top level: field names may not be empty"
    );
    assert_eq!(
        msg(fields_of([(
            "a",
            Value::Array(vec![obj([("é", Value::Null)])])
        )])),
        "field name `é` at path .a[0]: field names may only contain printable ASCII characters"
    );
    assert!(check_value(&obj([("_ok", Value::Null)])).is_ok());
}

#[test]
fn enforces_nesting_depth() {
    assert!(check_value(&nested(16)).is_ok());
    assert_eq!(
        check_value(&nested(17)).unwrap_err(),
        LimitError::TooDeep {
            path: "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]".into()
        }
    );
    // A document is itself one level.
    assert!(check_document(&fields_of([("a", nested(15))])).is_ok());
    assert!(matches!(
        check_document(&fields_of([("a", nested(16))])),
        Err(LimitError::TooDeep { .. })
    ));
}

#[test]
fn enforces_field_and_array_counts() {
    let wide: Value = Value::Object(
        (0..=MAX_OBJECT_FIELDS)
            .map(|i| (format!("f{i}"), Value::Null))
            .collect(),
    );
    assert_eq!(
        check_value(&obj([("w", wide)])).unwrap_err().to_string(),
        "object at path .w has 1025 fields; the limit is 1024"
    );
    let long = Value::Array(vec![Value::Null; MAX_ARRAY_LEN + 1]);
    assert_eq!(
        check_value(&long).unwrap_err().to_string(),
        "array at the top level has 8193 elements; the limit is 8192"
    );
}

#[test]
fn enforces_byte_sizes() {
    let big = s(&"x".repeat(1 << 20));
    let err = check_document(&fields_of([("a", big.clone())])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "document is too large: 1048582 bytes exceeds the limit of 1048576 bytes"
    );
    assert!(check_value(&big).is_ok());
    let huge = Value::Array(vec![s(&"x".repeat(1 << 20)); 17]);
    assert!(matches!(
        check_value(&huge),
        Err(LimitError::TooLarge { what: "value", .. })
    ));
}
