//! Index keys: ordering examples, prefix scans and malformed input.

use convect_schema::{decode_index_key, encode_index_key, prefix_successor, KeyError, Value};

use crate::{obj, s};

fn key(values: &[Option<Value>]) -> Vec<u8> {
    let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
    encode_index_key(&refs)
}

#[test]
fn missing_sorts_before_null_and_values() {
    let missing = key(&[None]);
    let null = key(&[Some(Value::Null)]);
    let int = key(&[Some(Value::Int64(i64::MIN))]);
    assert!(missing < null && null < int);
}

#[test]
fn embedded_zero_bytes_keep_order() {
    let ordered = [s("a"), s("a\0"), s("a\0\0"), s("a\u{1}"), s("ab")];
    for pair in ordered.windows(2) {
        assert!(
            key(&[Some(pair[0].clone())]) < key(&[Some(pair[1].clone())]),
            "{:?}",
            pair
        );
    }
}

#[test]
fn tuple_prefix_is_byte_prefix_and_scans_cover_it() {
    let prefix = key(&[Some(s("alice"))]);
    let full = key(&[Some(s("alice")), Some(Value::Float64(1.0)), None]);
    assert!(full.starts_with(&prefix));
    let end = prefix_successor(&prefix).unwrap();
    assert!(full < end);
    assert!(key(&[Some(s("alicf"))]) >= end);
}

#[test]
fn prefix_successor_cases() {
    assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
    assert_eq!(prefix_successor(&[1, 0xff, 0xff]), Some(vec![2]));
    assert_eq!(prefix_successor(&[0xff]), None);
    assert_eq!(prefix_successor(&[]), None);
}

#[test]
fn nested_values_round_trip() {
    let values = vec![
        None,
        Some(obj([
            (
                "a",
                Value::Array(vec![Value::Bytes(vec![0, 255]), Value::Null]),
            ),
            ("b\0", obj([])),
        ])),
        Some(Value::Float64(f64::NAN)),
        Some(Value::Float64(-0.0)),
    ];
    assert_eq!(decode_index_key(&key(&values)).unwrap(), values);
    assert_eq!(decode_index_key(&[]).unwrap(), Vec::<Option<Value>>::new());
}

#[test]
fn rejects_malformed_keys() {
    let full = key(&[Some(s("abc"))]);
    assert_eq!(
        decode_index_key(&full[..full.len() - 1]),
        Err(KeyError::Truncated(full.len() - 1))
    );
    assert_eq!(
        decode_index_key(&[0x7f]),
        Err(KeyError::UnexpectedTag { tag: 0x7f, at: 0 })
    );
    assert_eq!(
        decode_index_key(&[0x07, b'a', 0, 5]),
        Err(KeyError::BadEscape(3))
    );
    assert_eq!(
        decode_index_key(&[0x07, 0xff, 0, 0]),
        Err(KeyError::InvalidUtf8)
    );
    assert_eq!(decode_index_key(&[0x03, 1, 2]), Err(KeyError::Truncated(3)));
    // Object fields out of order: "b" then "a".
    let unordered = [0x0a, 1, b'b', 0, 0, 2, 1, b'a', 0, 0, 2, 0];
    assert_eq!(
        decode_index_key(&unordered),
        Err(KeyError::UnorderedField("a".into()))
    );
    // A missing marker may not appear inside an array.
    assert!(matches!(
        decode_index_key(&[0x09, 0x01, 0x00]),
        Err(KeyError::UnexpectedTag { tag: 1, at: 1 })
    ));
    let deep = [vec![0x09; 200], vec![0; 200]].concat();
    assert_eq!(decode_index_key(&deep), Err(KeyError::TooDeep));
}
