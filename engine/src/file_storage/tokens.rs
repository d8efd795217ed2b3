//! Upload tokens: what `generateUploadUrl` hands out and the upload endpoint
//! checks. A token is a random nonce and an expiry, authenticated with a
//! keyed BLAKE3 MAC under a per-data-directory secret, so checking one needs no
//! lookup and a forged or edited one is refused. That it is used at most once is
//! the `_upload_tokens` table's job (`table.rs`), in the transaction that
//! records the file, so it holds across restarts and concurrent uploads.

use std::io;
use std::path::Path;
use std::time::Duration;

const NONCE_BYTES: usize = 16;
const PAYLOAD_BYTES: usize = NONCE_BYTES + 8;
const MAC_BYTES: usize = 32;

/// Why a token was refused; both mean "ask for a new upload URL".
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the upload URL's token is not valid")]
    Invalid,
    #[error("the upload URL has expired; generate a new one")]
    Expired,
}

/// A checked token: its nonce (hex) and when it expires (Unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub nonce: String,
    pub expires_ms: u64,
}

pub struct UploadTokens {
    key: [u8; 32],
    ttl: Duration,
}

impl UploadTokens {
    /// Reads the secret at `key_path`, creating it (random, owner-only) on first use.
    pub fn open(key_path: &Path, ttl: Duration) -> io::Result<UploadTokens> {
        let key = match std::fs::read(key_path) {
            Ok(bytes) => bytes.try_into().map_err(|_| io::Error::other(format!("{} is not a 32-byte key", key_path.display())))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => create_key(key_path)?,
            Err(e) => return Err(e),
        };
        Ok(UploadTokens { key, ttl })
    }

    pub fn issue(&self, now_ms: u64) -> String {
        let mut payload = [0u8; PAYLOAD_BYTES];
        payload[..NONCE_BYTES].copy_from_slice(&rand::random::<[u8; NONCE_BYTES]>());
        let expires = now_ms.saturating_add(self.ttl.as_millis() as u64);
        payload[NONCE_BYTES..].copy_from_slice(&expires.to_be_bytes());
        let mac = blake3::keyed_hash(&self.key, &payload);
        format!("{}{}", hex(&payload), mac.to_hex())
    }

    pub fn check(&self, token: &str, now_ms: u64) -> Result<Grant, TokenError> {
        let bytes = unhex(token).ok_or(TokenError::Invalid)?;
        if bytes.len() != PAYLOAD_BYTES + MAC_BYTES {
            return Err(TokenError::Invalid);
        }
        let (payload, mac) = bytes.split_at(PAYLOAD_BYTES);
        let mac: [u8; MAC_BYTES] = mac.try_into().map_err(|_| TokenError::Invalid)?;
        // `blake3::Hash` compares in constant time.
        if blake3::keyed_hash(&self.key, payload) != blake3::Hash::from_bytes(mac) {
            return Err(TokenError::Invalid);
        }
        let expires_ms = u64::from_be_bytes(payload[NONCE_BYTES..].try_into().map_err(|_| TokenError::Invalid)?);
        if now_ms >= expires_ms {
            return Err(TokenError::Expired);
        }
        Ok(Grant { nonce: hex(&payload[..NONCE_BYTES]), expires_ms })
    }
}

fn create_key(path: &Path) -> io::Result<[u8; 32]> {
    let key: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    io::Write::write_all(&mut file, &key)?;
    file.sync_all()?;
    Ok(key)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(dir: &Path, ttl_ms: u64) -> UploadTokens {
        UploadTokens::open(&dir.join("key"), Duration::from_millis(ttl_ms)).unwrap()
    }

    #[test]
    fn a_token_checks_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path(), 1000);
        let token = t.issue(5_000);
        let grant = t.check(&token, 5_999).unwrap();
        assert_eq!(grant.expires_ms, 6_000);
        assert_eq!(grant.nonce.len(), 2 * NONCE_BYTES);
        assert_eq!(t.check(&token, 6_000), Err(TokenError::Expired));
    }

    #[test]
    fn the_key_outlives_a_restart_and_tokens_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let token = tokens(dir.path(), 1000).issue(0);
        let again = tokens(dir.path(), 1000);
        assert!(again.check(&token, 1).is_ok());
        assert_ne!(again.issue(0), token);
    }

    #[test]
    fn forged_edited_and_foreign_tokens_are_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path(), 1000);
        let token = t.issue(0);
        // A later expiry, re-signed with nothing: the MAC no longer matches.
        let mut edited = token.clone().into_bytes();
        edited[2 * NONCE_BYTES] = if edited[2 * NONCE_BYTES] == b'f' { b'0' } else { b'f' };
        let edited = String::from_utf8(edited).unwrap();
        let other = tempfile::tempdir().unwrap();
        for bad in ["coffee", "", "zz", &edited, &tokens(other.path(), 1000).issue(0), &token[..token.len() - 2]] {
            assert_eq!(t.check(bad, 1), Err(TokenError::Invalid), "{bad}");
        }
    }
}
