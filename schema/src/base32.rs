//! Lowercase Crockford-style base32 (no padding), the text form of document
//! IDs: URL-safe, case-insensitive-looking and free of ambiguous letters.

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Packs bytes most-significant bit first, five bits per character.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    let mut buffer: u16 = 0;
    let mut bits = 0;
    for &byte in bytes {
        buffer = (buffer << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[usize::from((buffer >> bits) & 31)] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[usize::from((buffer << (5 - bits)) & 31)] as char);
    }
    out
}

/// Decodes text produced by [`encode`]. Returns `None` for characters outside
/// the alphabet, impossible lengths, or non-zero padding bits, so that every
/// byte string has exactly one accepted text form.
pub(crate) fn decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u16 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let digit = ALPHABET.iter().position(|&a| a == c)?;
        buffer = (buffer << 5) | digit as u16;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    let canonical = bits < 5 && buffer == 0 && encoded_len(out.len()) == text.len();
    canonical.then_some(out)
}

fn encoded_len(byte_len: usize) -> usize {
    (byte_len * 8).div_ceil(5)
}
