//! Proptest generators for values and index tuples. Small alphabets and
//! special floats make equal prefixes and edge cases common.

use convect_schema::Value;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

pub fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        prop::num::f64::ANY,
        Just(f64::NAN),
        Just(-f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(0.0),
        Just(-0.0),
        Just(f64::MIN_POSITIVE),
        // Arbitrary bit patterns, so NaNs with any payload and sign appear.
        any::<u64>().prop_map(f64::from_bits),
    ]
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![any::<i64>(), Just(i64::MIN), Just(i64::MAX), -2i64..=2]
}

/// Strings over a small alphabet (so equal prefixes are common) whose UTF-8
/// and UTF-16 orders differ, with NUL for the key encoding's escaping.
const STRING: &str = "[ab\u{0}\u{1}é\u{ff61}\u{10000}]{0,4}";

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(prop_oneof![Just(0u8), Just(255u8), any::<u8>()], 0..5)
}

/// Field names valid for JSON (no leading `$`), including NUL and non-ASCII
/// to exercise the key encoding's escaping and byte order.
fn field_name() -> impl Strategy<Value = String> {
    "[ab_\u{0}é]{0,3}"
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        int().prop_map(Value::Int64),
        float().prop_map(Value::Float64),
        any::<bool>().prop_map(Value::Boolean),
        STRING.prop_map(Value::String),
        bytes().prop_map(Value::Bytes),
    ]
}

pub fn value() -> impl Strategy<Value = Value> {
    // Leaves stay likely at every level so that comparisons between
    // same-typed scalars (the interesting ones) are common.
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            3 => inner.clone(),
            1 => vec(inner.clone(), 0..5).prop_map(Value::Array),
            1 => btree_map(field_name(), inner, 0..5).prop_map(Value::Object),
        ]
    })
}

pub fn tuple() -> impl Strategy<Value = Vec<Option<Value>>> {
    vec(proptest::option::weighted(0.9, value()), 0..4)
}

/// Two scalars of the same type: the comparisons the type tag cannot decide.
fn scalar_pair() -> impl Strategy<Value = (Value, Value)> {
    prop_oneof![
        (float(), float()).prop_map(|(x, y)| (Value::Float64(x), Value::Float64(y))),
        (int(), int()).prop_map(|(x, y)| (Value::Int64(x), Value::Int64(y))),
        (any::<bool>(), any::<bool>()).prop_map(|(x, y)| (Value::Boolean(x), Value::Boolean(y))),
        (STRING, STRING).prop_map(|(x, y)| (Value::String(x), Value::String(y))),
        (bytes(), bytes()).prop_map(|(x, y)| (Value::Bytes(x), Value::Bytes(y))),
    ]
}

/// Two values that agree except at one place, possibly deep inside equal
/// containers, so the deciding comparison is usually a same-typed one.
fn related_pair() -> impl Strategy<Value = (Value, Value)> {
    let base = prop_oneof![3 => scalar_pair(), 1 => (value(), value())];
    base.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (vec(value(), 0..3), inner.clone(), vec(value(), 0..2)).prop_map(
                |(pre, (x, y), post)| {
                    let wrap = |v| {
                        Value::Array(
                            pre.iter()
                                .cloned()
                                .chain([v])
                                .chain(post.iter().cloned())
                                .collect(),
                        )
                    };
                    (wrap(x), wrap(y))
                }
            ),
            (field_name(), inner, btree_map(field_name(), value(), 0..2)).prop_map(
                |(key, (x, y), rest)| {
                    let wrap = |v| {
                        let mut fields = rest.clone();
                        fields.insert(key.clone(), v);
                        Value::Object(fields)
                    };
                    (wrap(x), wrap(y))
                }
            ),
        ]
    })
}

/// Two tuples sharing a prefix and then differing in a related element, in
/// missingness, or in length.
pub fn tuple_pair() -> impl Strategy<Value = (Vec<Option<Value>>, Vec<Option<Value>>)> {
    let element = || proptest::option::weighted(0.9, value());
    let differing = prop_oneof![
        4 => related_pair().prop_map(|(x, y)| vec![(Some(x), Some(y))]),
        1 => (element(), element()).prop_map(|pair| vec![pair]),
        1 => Just(Vec::new()),
    ];
    (tuple(), differing, tuple(), tuple()).prop_map(|(common, differing, tail_a, tail_b)| {
        let mut a = common.clone();
        let mut b = common;
        for (x, y) in differing {
            a.push(x);
            b.push(y);
        }
        a.extend(tail_a);
        b.extend(tail_b);
        (a, b)
    })
}
