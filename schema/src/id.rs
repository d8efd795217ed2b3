//! Document IDs: a table number plus a random internal id, checksummed and
//! rendered in base32, so the table of any ID can be recovered from the ID
//! alone (as `db.normalizeId` and `v.id(table)` require).

use crate::base32;

const INTERNAL_ID_LEN: usize = 16;
const CHECKSUM_LEN: usize = 2;
/// A u32 varint takes at most five bytes.
const MAX_VARINT_LEN: usize = 5;

/// Why a string is not a valid document ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("`{0}` is not a valid document ID: it contains characters outside the ID alphabet or has an impossible length")]
    BadEncoding(String),
    #[error("`{0}` is not a valid document ID: its table number is malformed")]
    BadTableNumber(String),
    #[error("`{0}` is not a valid document ID: it has the wrong length")]
    WrongLength(String),
    #[error("`{0}` is not a valid document ID: its checksum does not match")]
    BadChecksum(String),
}

/// A document's identity: which table it lives in and its id within it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocumentId {
    pub table_number: u32,
    pub internal_id: [u8; 16],
}

impl DocumentId {
    /// Text form: base32 of `varint(table_number) ++ internal_id ++ checksum`.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(MAX_VARINT_LEN + INTERNAL_ID_LEN + CHECKSUM_LEN);
        write_varint(self.table_number, &mut bytes);
        bytes.extend_from_slice(&self.internal_id);
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        base32::encode(&bytes)
    }

    /// Parses the text form, rejecting anything [`DocumentId::encode`] could
    /// not have produced.
    pub fn decode(s: &str) -> Result<DocumentId, IdError> {
        let bytes = base32::decode(s).ok_or_else(|| IdError::BadEncoding(s.to_owned()))?;
        if bytes.len() < 1 + INTERNAL_ID_LEN + CHECKSUM_LEN {
            return Err(IdError::WrongLength(s.to_owned()));
        }
        let (table_number, varint_len) =
            read_varint(&bytes).ok_or_else(|| IdError::BadTableNumber(s.to_owned()))?;
        if bytes.len() != varint_len + INTERNAL_ID_LEN + CHECKSUM_LEN {
            return Err(IdError::WrongLength(s.to_owned()));
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(IdError::BadChecksum(s.to_owned()));
        }
        let mut internal_id = [0u8; INTERNAL_ID_LEN];
        internal_id.copy_from_slice(&body[varint_len..]);
        Ok(DocumentId {
            table_number,
            internal_id,
        })
    }
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let hash = blake3::hash(bytes);
    [hash.as_bytes()[0], hash.as_bytes()[1]]
}

/// Unsigned LEB128.
fn write_varint(mut n: u32, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a minimal-length LEB128 u32, returning it and its byte length.
/// Overlong forms are rejected so each table number has one encoding.
fn read_varint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u64 = 0;
    for (i, &byte) in bytes.iter().take(MAX_VARINT_LEN).enumerate() {
        value |= u64::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            let overlong = i > 0 && byte == 0;
            return (!overlong).then_some((u32::try_from(value).ok()?, i + 1));
        }
    }
    None
}
