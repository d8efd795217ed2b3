//! Property tests: index-key order and round trips, JSON round trips, value
//! hashing, and document ID round trips and corruption.

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use convect_schema::{
    compare_optional, decode_index_key, encode_index_key, prefix_successor, DocumentId, Value,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::strategies::{tuple, tuple_pair, value};

fn encode(t: &[Option<Value>]) -> Vec<u8> {
    encode_index_key(&t.iter().map(Option::as_ref).collect::<Vec<_>>())
}

fn compare_tuples(a: &[Option<Value>], b: &[Option<Value>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match compare_optional(x.as_ref(), y.as_ref()) {
            Ordering::Equal => continue,
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

fn hash_of(v: &Value) -> u64 {
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

proptest! {
    #[test]
    fn key_order_matches_value_order((a, b) in tuple_pair()) {
        prop_assert_eq!(encode(&a).cmp(&encode(&b)), compare_tuples(&a, &b));
    }

    #[test]
    fn key_round_trips(t in tuple()) {
        prop_assert_eq!(decode_index_key(&encode(&t)).unwrap(), t);
    }

    #[test]
    fn key_prefixes_are_byte_prefixes(t in tuple(), cut in 0usize..4) {
        let full = encode(&t);
        let prefix = encode(&t[..cut.min(t.len())]);
        prop_assert!(full.starts_with(&prefix));
        if let Some(end) = prefix_successor(&prefix) {
            prop_assert!(full < end);
        }
    }

    #[test]
    fn json_round_trips(v in value()) {
        let json = v.to_json();
        prop_assert_eq!(&Value::from_json(&json).unwrap(), &v);
        let text = serde_json::to_string(&json).unwrap();
        prop_assert_eq!(Value::from_json(&serde_json::from_str(&text).unwrap()).unwrap(), v);
    }

    #[test]
    fn equal_values_hash_equally(a in value(), b in value()) {
        if a == b {
            prop_assert_eq!(hash_of(&a), hash_of(&b));
        }
        prop_assert_eq!(hash_of(&a), hash_of(&a.clone()));
    }

    #[test]
    fn document_ids_round_trip(table_number in any::<u32>(), internal_id in any::<[u8; 16]>()) {
        let id = DocumentId { table_number, internal_id };
        prop_assert_eq!(DocumentId::decode(&id.encode()), Ok(id));
    }
}

const ALPHABET: &[u8] = b"0123456789abcdefghjkmnpqrstvwxyz";

proptest! {
    // A 16-bit checksum misses one corruption in 65,536, so this property
    // only holds for the inputs actually drawn: a fixed seed keeps it
    // deterministic.
    #![proptest_config(Config { rng_seed: RngSeed::Fixed(0x5eed), ..Config::default() })]

    #[test]
    fn corrupted_document_ids_are_rejected(
        table_number in any::<u32>(),
        internal_id in any::<[u8; 16]>(),
        position in any::<prop::sample::Index>(),
        shift in 1usize..32,
    ) {
        let mut text = DocumentId { table_number, internal_id }.encode().into_bytes();
        let i = position.index(text.len());
        let digit = ALPHABET.iter().position(|&c| c == text[i]).unwrap();
        text[i] = ALPHABET[(digit + shift) % 32];
        prop_assert!(DocumentId::decode(std::str::from_utf8(&text).unwrap()).is_err());
    }
}
