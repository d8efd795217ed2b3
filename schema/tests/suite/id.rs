//! Document IDs: format, round trips and rejection of corrupt IDs.

use convect_schema::{DocumentId, IdError};

const ALPHABET: &str = "0123456789abcdefghjkmnpqrstvwxyz";

fn id(table_number: u32) -> DocumentId {
    DocumentId {
        table_number,
        internal_id: *b"0123456789abcdef",
    }
}

#[test]
fn length_depends_on_table_number() {
    assert_eq!(id(1).encode().len(), 31);
    assert_eq!(id(127).encode().len(), 31);
    assert_eq!(id(128).encode().len(), 32);
    assert_eq!(id(u32::MAX).encode().len(), 37);
}

#[test]
fn encodes_in_lowercase_alphabet_and_round_trips() {
    for table in [0, 1, 127, 128, 16383, 16384, u32::MAX] {
        let text = id(table).encode();
        assert!(text.chars().all(|c| ALPHABET.contains(c)), "{text}");
        assert_eq!(DocumentId::decode(&text), Ok(id(table)));
    }
}

#[test]
fn rejects_foreign_characters_and_case() {
    let text = id(5).encode();
    let upper = text.to_uppercase();
    assert!(matches!(
        DocumentId::decode(&upper),
        Err(IdError::BadEncoding(_))
    ));
    let with_u = format!("u{}", &text[1..]);
    assert!(matches!(
        DocumentId::decode(&with_u),
        Err(IdError::BadEncoding(_))
    ));
    assert!(matches!(
        DocumentId::decode(""),
        Err(IdError::WrongLength(_))
    ));
}

#[test]
fn rejects_wrong_length_and_checksum() {
    let text = id(5).encode();
    assert!(DocumentId::decode(&text[..30]).is_err());
    assert!(DocumentId::decode(&format!("{text}0")).is_err());
    let mut corrupted = text.into_bytes();
    corrupted[10] = if corrupted[10] == b'0' { b'1' } else { b'0' };
    let corrupted = String::from_utf8(corrupted).unwrap();
    assert!(matches!(
        DocumentId::decode(&corrupted),
        Err(IdError::BadChecksum(_))
    ));
}

#[test]
fn error_messages_name_the_input() {
    assert_eq!(
        DocumentId::decode("xyz").unwrap_err().to_string(),
        "`xyz` is not a valid document ID: it contains characters outside the ID alphabet or has an impossible length"
    );
}
