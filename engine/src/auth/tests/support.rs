//! What the auth tests share: a movable clock, token signers with their
//! JWKs, JWKS documents and configs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

use crate::auth::test_keys::{OTHER_RSA_PRIVATE_PEM, RSA_JWK_E, RSA_JWK_N, RSA_PRIVATE_PEM};
use crate::auth::{parse_providers, Verifier};

/// The tests' "now", in seconds since the epoch.
pub const NOW: u64 = 1_700_000_000;

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct TestClock(Arc<AtomicU64>);

impl TestClock {
    pub fn new() -> Self {
        TestClock(Arc::new(AtomicU64::new(NOW)))
    }

    pub fn advance(&self, seconds: u64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

/// A verifier for `config` (an `auth.config.ts` default export).
pub fn verifier(config: Value, clock: &TestClock) -> Verifier {
    let providers = parse_providers(&config).expect("test config parses");
    let time = clock.0.clone();
    Verifier::with_clock(
        providers,
        reqwest::Client::new(),
        Arc::new(move || time.load(Ordering::SeqCst)),
    )
}

/// Signs tokens with one key, naming it `kid` (or no `kid`).
pub struct Signer {
    alg: Algorithm,
    kid: Option<String>,
    key: EncodingKey,
}

impl Signer {
    pub fn rsa(kid: &str) -> Self {
        Self::rsa_pem(RSA_PRIVATE_PEM, kid)
    }

    /// A key the JWKS does not hold, claiming the JWKS key's `kid`.
    pub fn impostor(kid: &str) -> Self {
        Self::rsa_pem(OTHER_RSA_PRIVATE_PEM, kid)
    }

    fn rsa_pem(pem: &str, kid: &str) -> Self {
        Signer {
            alg: Algorithm::RS256,
            kid: Some(kid.to_string()),
            key: EncodingKey::from_rsa_der(&pem_der(pem)),
        }
    }

    /// A fresh P-256 key and its public JWK.
    pub fn es256(kid: &str) -> (Self, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        // An uncompressed point: 0x04, then x and y.
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        });
        let signer = Signer {
            alg: Algorithm::ES256,
            kid: Some(kid.to_string()),
            key: EncodingKey::from_ec_der(pkcs8.as_ref()),
        };
        (signer, jwk)
    }

    /// A fresh Ed25519 key and its public JWK.
    pub fn ed25519(kid: &str) -> (Self, Value) {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = json!({
            "kty": "OKP", "crv": "Ed25519", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        });
        let signer = Signer {
            alg: Algorithm::EdDSA,
            kid: Some(kid.to_string()),
            key: EncodingKey::from_ed_der(pkcs8.as_ref()),
        };
        (signer, jwk)
    }

    pub fn without_kid(mut self) -> Self {
        self.kid = None;
        self
    }

    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = self.kid.clone();
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// The public JWK of [`Signer::rsa`].
pub fn rsa_jwk(kid: &str) -> Value {
    json!({
        "kty": "RSA", "n": RSA_JWK_N, "e": RSA_JWK_E, "kid": kid, "alg": "RS256", "use": "sig",
    })
}

pub fn jwks(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// A JWKS as `auth.config.ts` embeds it.
pub fn data_uri(jwks: &str) -> String {
    format!(
        "data:text/plain;charset=utf-8;base64,{}",
        STANDARD.encode(jwks)
    )
}

pub fn custom_jwt(issuer: &str, jwks: &str, algorithm: &str, app: Option<&str>) -> Value {
    let mut provider = json!({
        "type": "customJwt", "issuer": issuer, "jwks": jwks, "algorithm": algorithm,
    });
    if let Some(app) = app {
        provider["applicationID"] = json!(app);
    }
    provider
}

/// Claims of a token valid at [`NOW`] for an hour.
pub fn claims(issuer: &str, audience: &str) -> Value {
    json!({
        "iss": issuer, "aud": audience, "sub": "user-1", "iat": NOW - 10, "exp": NOW + 3600,
    })
}

/// `base` with the fields of `changes` set, or removed where they are null.
pub fn with(mut base: Value, changes: Value) -> Value {
    let fields = base.as_object_mut().unwrap();
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => fields.remove(name),
            value => fields.insert(name.clone(), value.clone()),
        };
    }
    base
}

/// A token with the given header and no signature at all.
pub fn unsigned(header: &Value, claims: &Value) -> String {
    let encode = |part: &Value| URL_SAFE_NO_PAD.encode(part.to_string());
    format!("{}.{}.", encode(header), encode(claims))
}

/// The DER body of a PEM block.
pub fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).unwrap()
}
