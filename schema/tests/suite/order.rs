//! The Convex total order, equality and hashing of values.

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use convect_schema::{compare_optional, get_field_path, Value};

use crate::{fields_of, obj, s};

fn hash_of(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

#[test]
fn types_sort_in_convex_order() {
    let ascending = [
        Value::Null,
        Value::Int64(i64::MAX),
        Value::Float64(f64::NEG_INFINITY),
        Value::Boolean(false),
        Value::Boolean(true),
        s(""),
        Value::Bytes(vec![]),
        Value::Array(vec![]),
        obj([]),
    ];
    for pair in ascending.windows(2) {
        assert!(pair[0] < pair[1], "{:?} < {:?}", pair[0], pair[1]);
    }
}

#[test]
fn floats_use_total_order() {
    let nan = Value::Float64(f64::NAN);
    let neg_nan = Value::Float64(-f64::NAN);
    assert!(Value::Float64(-0.0) < Value::Float64(0.0));
    assert_ne!(Value::Float64(-0.0), Value::Float64(0.0));
    assert_eq!(nan, Value::Float64(f64::NAN));
    assert_eq!(hash_of(&nan), hash_of(&Value::Float64(f64::NAN)));
    assert!(neg_nan < Value::Float64(f64::NEG_INFINITY));
    assert!(nan > Value::Float64(f64::INFINITY));
}

#[test]
fn strings_compare_by_utf8_bytes() {
    // U+FF61 sorts after U+10000 in UTF-16 order but before it in UTF-8 order.
    assert!(s("\u{ff61}") < s("\u{10000}"));
    assert!(s("a") < s("ab"));
    assert!(s("B") < s("a"));
}

#[test]
fn arrays_and_objects_compare_elementwise_then_by_length() {
    let a = |items: Vec<Value>| Value::Array(items);
    assert!(a(vec![Value::Int64(1)]) < a(vec![Value::Int64(1), Value::Null]));
    assert!(a(vec![Value::Int64(2)]) < a(vec![Value::Float64(0.0)]));
    assert!(obj([("a", Value::Int64(1))]) < obj([("a", Value::Int64(1)), ("b", Value::Null)]));
    assert!(obj([("a", Value::Int64(9))]) < obj([("b", Value::Null)]));
    assert!(obj([("a", Value::Int64(1))]) < obj([("a", Value::Int64(2))]));
}

#[test]
fn missing_sorts_before_null() {
    assert_eq!(compare_optional(None, Some(&Value::Null)), Ordering::Less);
    assert_eq!(compare_optional(None, None), Ordering::Equal);
    assert_eq!(
        compare_optional(Some(&Value::Null), None),
        Ordering::Greater
    );
}

#[test]
fn field_paths_walk_nested_objects() {
    let doc = fields_of([
        ("a", obj([("b", obj([("c", Value::Int64(7))]))])),
        ("x", s("y")),
    ]);
    assert_eq!(get_field_path(&doc, "a.b.c"), Some(&Value::Int64(7)));
    assert_eq!(get_field_path(&doc, "x"), Some(&s("y")));
    assert_eq!(get_field_path(&doc, "x.y"), None);
    assert_eq!(get_field_path(&doc, "a.q"), None);
    assert_eq!(get_field_path(&doc, ""), None);
}

#[test]
fn type_names() {
    let names: Vec<_> = [
        Value::Null,
        Value::Int64(0),
        Value::Float64(0.0),
        Value::Boolean(true),
        s(""),
        Value::Bytes(vec![]),
        Value::Array(vec![]),
        obj([]),
    ]
    .iter()
    .map(Value::type_name)
    .collect();
    assert_eq!(
        names,
        ["null", "int64", "float64", "boolean", "string", "bytes", "array", "object"]
    );
}
