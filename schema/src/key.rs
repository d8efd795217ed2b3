//! Index keys: a byte encoding of tuples of (possibly missing) values whose
//! bytewise order equals the Convex value order, so a sorted key-value store
//! can serve index range scans directly.
//!
//! Every element starts with a type tag (ordered like the types) and is
//! self-delimiting, which keeps the order of whole tuples lexicographic and
//! makes the key of a tuple prefix a byte prefix of the full key.

use std::collections::BTreeMap;

use crate::value::Value;

const TAG_MISSING: u8 = 0x01;
const TAG_NULL: u8 = 0x02;
const TAG_INT64: u8 = 0x03;
const TAG_FLOAT64: u8 = 0x04;
const TAG_FALSE: u8 = 0x05;
const TAG_TRUE: u8 = 0x06;
const TAG_STRING: u8 = 0x07;
const TAG_BYTES: u8 = 0x08;
const TAG_ARRAY: u8 = 0x09;
const TAG_OBJECT: u8 = 0x0A;
/// Closes arrays and objects; it is below every tag so shorter sorts first.
const END: u8 = 0x00;
/// Opens each object field; above `END` so an object with more fields sorts later.
const FIELD: u8 = 0x01;
/// Follows a 0x00 byte inside string or bytes content; `0x00 0x00` ends it.
const ESCAPED_ZERO: u8 = 0xFF;
const SIGN_BIT: u64 = 1 << 63;
/// Bounds recursion when decoding untrusted bytes.
const MAX_KEY_DEPTH: usize = 128;

/// Why bytes are not a valid index key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("index key ends unexpectedly at byte {0}")]
    Truncated(usize),
    #[error("index key has an unexpected tag {tag:#04x} at byte {at}")]
    UnexpectedTag { tag: u8, at: usize },
    #[error("index key has an invalid escape sequence at byte {0}")]
    BadEscape(usize),
    #[error("index key contains a string that is not valid UTF-8")]
    InvalidUtf8,
    #[error("index key contains an object whose field `{0}` is out of order or repeated")]
    UnorderedField(String),
    #[error("index key nests values deeper than {MAX_KEY_DEPTH} levels")]
    TooDeep,
}

/// Encodes a tuple of index values; `None` stands for a missing field.
pub fn encode_index_key(values: &[Option<&Value>]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        match value {
            None => out.push(TAG_MISSING),
            Some(v) => encode_value(v, &mut out),
        }
    }
    out
}

/// Decodes a key produced by [`encode_index_key`].
pub fn decode_index_key(bytes: &[u8]) -> Result<Vec<Option<Value>>, KeyError> {
    let mut reader = Reader { bytes, pos: 0 };
    let mut values = Vec::new();
    while reader.pos < bytes.len() {
        if bytes[reader.pos] == TAG_MISSING {
            reader.pos += 1;
            values.push(None);
        } else {
            values.push(Some(reader.value(0)?));
        }
    }
    Ok(values)
}

/// The smallest byte string greater than every string that starts with
/// `prefix`, i.e. the exclusive end of a prefix scan; `None` when no such
/// string exists (the prefix is empty or all `0xFF`).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last != u8::MAX {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

fn encode_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.push(TAG_NULL),
        Value::Int64(i) => {
            out.push(TAG_INT64);
            out.extend_from_slice(&((*i as u64) ^ SIGN_BIT).to_be_bytes());
        }
        Value::Float64(x) => {
            out.push(TAG_FLOAT64);
            out.extend_from_slice(&float_to_ordered(*x).to_be_bytes());
        }
        Value::Boolean(b) => out.push(if *b { TAG_TRUE } else { TAG_FALSE }),
        Value::String(s) => {
            out.push(TAG_STRING);
            encode_content(s.as_bytes(), out);
        }
        Value::Bytes(b) => {
            out.push(TAG_BYTES);
            encode_content(b, out);
        }
        Value::Array(items) => {
            out.push(TAG_ARRAY);
            items.iter().for_each(|item| encode_value(item, out));
            out.push(END);
        }
        Value::Object(fields) => {
            out.push(TAG_OBJECT);
            for (key, item) in fields {
                out.push(FIELD);
                encode_content(key.as_bytes(), out);
                encode_value(item, out);
            }
            out.push(END);
        }
    }
}

/// Maps float bits to unsigned integers ordered like `f64::total_cmp`:
/// negatives have all bits flipped (larger magnitude sorts first), positives
/// just gain the sign bit so they sort after every negative.
fn float_to_ordered(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits & SIGN_BIT != 0 {
        !bits
    } else {
        bits | SIGN_BIT
    }
}

fn float_from_ordered(key: u64) -> f64 {
    f64::from_bits(if key & SIGN_BIT != 0 {
        key ^ SIGN_BIT
    } else {
        !key
    })
}

fn encode_content(content: &[u8], out: &mut Vec<u8>) {
    for &byte in content {
        out.push(byte);
        if byte == 0 {
            out.push(ESCAPED_ZERO);
        }
    }
    out.extend_from_slice(&[0, 0]);
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, KeyError> {
        let byte = *self
            .bytes
            .get(self.pos)
            .ok_or(KeyError::Truncated(self.pos))?;
        self.pos += 1;
        Ok(byte)
    }

    fn eight(&mut self) -> Result<u64, KeyError> {
        let end = self.pos + 8;
        let chunk = self
            .bytes
            .get(self.pos..end)
            .ok_or(KeyError::Truncated(self.bytes.len()))?;
        self.pos = end;
        Ok(u64::from_be_bytes(
            chunk.try_into().expect("slice of length 8"),
        ))
    }

    fn content(&mut self) -> Result<Vec<u8>, KeyError> {
        let mut out = Vec::new();
        loop {
            match self.byte()? {
                0 => match self.byte()? {
                    0 => return Ok(out),
                    ESCAPED_ZERO => out.push(0),
                    _ => return Err(KeyError::BadEscape(self.pos - 1)),
                },
                byte => out.push(byte),
            }
        }
    }

    fn string(&mut self) -> Result<String, KeyError> {
        String::from_utf8(self.content()?).map_err(|_| KeyError::InvalidUtf8)
    }

    fn value(&mut self, depth: usize) -> Result<Value, KeyError> {
        if depth > MAX_KEY_DEPTH {
            return Err(KeyError::TooDeep);
        }
        let at = self.pos;
        Ok(match self.byte()? {
            TAG_NULL => Value::Null,
            TAG_INT64 => Value::Int64((self.eight()? ^ SIGN_BIT) as i64),
            TAG_FLOAT64 => Value::Float64(float_from_ordered(self.eight()?)),
            TAG_FALSE => Value::Boolean(false),
            TAG_TRUE => Value::Boolean(true),
            TAG_STRING => Value::String(self.string()?),
            TAG_BYTES => Value::Bytes(self.content()?),
            TAG_ARRAY => Value::Array(self.array(depth)?),
            TAG_OBJECT => Value::Object(self.object(depth)?),
            tag => return Err(KeyError::UnexpectedTag { tag, at }),
        })
    }

    fn array(&mut self, depth: usize) -> Result<Vec<Value>, KeyError> {
        let mut items = Vec::new();
        while self.peek()? != END {
            items.push(self.value(depth + 1)?);
        }
        self.pos += 1;
        Ok(items)
    }

    fn object(&mut self, depth: usize) -> Result<BTreeMap<String, Value>, KeyError> {
        let mut fields = BTreeMap::new();
        loop {
            let at = self.pos;
            match self.byte()? {
                END => return Ok(fields),
                FIELD => {}
                tag => return Err(KeyError::UnexpectedTag { tag, at }),
            }
            let key = self.string()?;
            // Canonical keys list fields in ascending order exactly once.
            if fields
                .last_key_value()
                .is_some_and(|(last, _)| *last >= key)
            {
                return Err(KeyError::UnorderedField(key));
            }
            let item = self.value(depth + 1)?;
            fields.insert(key, item);
        }
    }

    fn peek(&self) -> Result<u8, KeyError> {
        self.bytes
            .get(self.pos)
            .copied()
            .ok_or(KeyError::Truncated(self.pos))
    }
}
