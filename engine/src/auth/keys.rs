//! A JWKS as verification keys: which published keys may check which
//! algorithm, and which key a token's header points to.

use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

use super::AuthError;

/// A published key, ready to verify tokens of exactly one algorithm.
#[derive(Clone)]
pub(super) struct Key {
    kid: Option<String>,
    alg: Algorithm,
    decoding: DecodingKey,
}

pub(super) type KeySet = Arc<[Key]>;

/// Why no key was chosen for a token.
pub(super) enum Miss {
    NoMatch,
    /// No `kid`, and several keys could verify the token.
    Ambiguous(usize),
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<Value>,
}

/// Parses a JWKS document. Keys this verifier cannot use (encryption keys,
/// HMAC secrets, other curves, kinds `jsonwebtoken` does not know) are
/// skipped rather than failing the whole set, as issuers publish such keys.
pub(super) fn parse_jwks(body: &[u8], source_desc: &str) -> Result<KeySet, AuthError> {
    let set: RawSet = serde_json::from_slice(body).map_err(|_| AuthError::JwksInvalid {
        source_desc: source_desc.to_string(),
    })?;
    Ok(set.keys.into_iter().filter_map(usable_key).collect())
}

fn usable_key(raw: Value) -> Option<Key> {
    let jwk: Jwk = serde_json::from_value(raw).ok()?;
    let for_signing = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|key_use| *key_use == PublicKeyUse::Signature);
    let alg = signing_algorithm(&jwk).filter(|_| for_signing)?;
    Some(Key {
        kid: jwk.common.key_id.clone(),
        alg,
        decoding: DecodingKey::from_jwk(&jwk).ok()?,
    })
}

/// The one algorithm a key may verify, from its type and curve; a declared
/// `alg` must agree. Symmetric (`oct`) keys never qualify: a user token
/// verified with a published secret would prove nothing.
fn signing_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    let by_shape = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Algorithm::ES256
        }
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let declared_agrees = match jwk.common.key_algorithm {
        None => true,
        Some(declared) => matches!(
            (declared, by_shape),
            (KeyAlgorithm::RS256, Algorithm::RS256)
                | (KeyAlgorithm::ES256, Algorithm::ES256)
                | (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
        ),
    };
    declared_agrees.then_some(by_shape)
}

/// The key for a token: the one named by `kid`, or, without a `kid`, the
/// only key for the algorithm.
pub(super) fn select(keys: &[Key], kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, Miss> {
    let mut candidates = keys.iter().filter(|key| key.alg == alg);
    let chosen = match kid {
        Some(kid) => candidates.find(|key| key.kid.as_deref() == Some(kid)),
        None => {
            let all: Vec<&Key> = candidates.collect();
            match all.as_slice() {
                [only] => Some(*only),
                [] => None,
                many => return Err(Miss::Ambiguous(many.len())),
            }
        }
    };
    chosen.map(|key| key.decoding.clone()).ok_or(Miss::NoMatch)
}

impl Miss {
    pub(super) fn into_error(self, kid: Option<&str>, alg: Algorithm) -> AuthError {
        match (self, kid) {
            (Miss::NoMatch, Some(kid)) => AuthError::UnknownKeyId {
                kid: kid.to_string(),
            },
            (Miss::NoMatch, None) => AuthError::NoKeyWithoutKeyId {
                alg: format!("{alg:?}"),
                candidates: 0,
            },
            (Miss::Ambiguous(candidates), _) => AuthError::NoKeyWithoutKeyId {
                alg: format!("{alg:?}"),
                candidates,
            },
        }
    }
}
