//! Turns a user's JWT into an `Identity`: route it to a provider by its
//! (unverified) issuer and audience, get the key it names, verify signature,
//! `iss` and `aud` with `jsonwebtoken`, then the times against our clock.
//!
//! Only asymmetric algorithms that the provider allows are accepted, checked
//! before any key is touched: never `none`, never HMAC, whose "secret" would
//! otherwise be the issuer's public key.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::identity::{self, Identity};
use super::jwks::KeySource;
use super::token::{peek, Peek};
use super::{AuthError, Provider};

/// Clock skew tolerated on `exp`, `nbf` and `iat`. Convex allows 5 s, and
/// its test suite expects a token that expired 10 s ago to be refused.
pub const LEEWAY_SECS: u64 = 5;

/// Seconds since the epoch; injectable so tests can move time.
pub(crate) type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Verifies tokens against a deployment's auth providers, caching their keys.
pub struct Verifier {
    providers: Vec<(Provider, KeySource)>,
    /// For "no provider found" errors, in Convex's format.
    configured: Vec<String>,
    http: reqwest::Client,
    clock: Clock,
}

/// A deployment without `auth.config.ts`: every token is refused.
impl Default for Verifier {
    fn default() -> Self {
        Verifier::new(Vec::new(), reqwest::Client::new())
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier").field("providers", &self.configured).finish()
    }
}

impl Verifier {
    /// `http` is the engine's client, so key fetches share its pool.
    pub fn new(providers: Vec<Provider>, http: reqwest::Client) -> Self {
        Self::with_clock(providers, http, Arc::new(system_now))
    }

    /// As `new`, reading the time from `clock` (tests move it by hand).
    pub(crate) fn with_clock(
        providers: Vec<Provider>,
        http: reqwest::Client,
        clock: Clock,
    ) -> Self {
        Verifier {
            configured: providers.iter().map(Provider::to_string).collect(),
            providers: providers
                .into_iter()
                .map(|provider| {
                    let keys = KeySource::new(&provider);
                    (provider, keys)
                })
                .collect(),
            http,
            clock,
        }
    }

    /// The identity a user's token proves. May fetch the provider's keys
    /// (bounded by a timeout), so errors include unreachable issuers.
    pub async fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let peeked = peek(token)?;
        let (provider, keys) = self.route(&peeked)?;
        let alg = allowed_algorithm(provider, &peeked.alg)?;
        if peeked.kid.is_none() && provider.requires_key_id() {
            return Err(AuthError::MissingKeyId);
        }
        let now = (self.clock)();
        let key = keys
            .find(peeked.kid.as_deref(), alg, &self.http, now)
            .await?;
        let claims = verified_claims(token, &key, alg, provider)?;
        let expires_at = check_times(&claims, now)?;
        let issuer = string_claim(&claims, "iss")?;
        let subject = string_claim(&claims, "sub")?;
        Ok(identity::build(
            provider.claim_style(),
            claims,
            &issuer,
            &subject,
            expires_at,
        ))
    }

    /// The first provider claiming the token, as Convex picks it.
    fn route(&self, peeked: &Peek) -> Result<&(Provider, KeySource), AuthError> {
        self.providers
            .iter()
            .find(|(provider, _)| provider.claims_token(&peeked.issuer, &peeked.audiences))
            .ok_or_else(|| AuthError::NoProvider {
                configured: self.configured.clone(),
            })
    }
}

fn system_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

fn allowed_algorithm(provider: &Provider, alg: &str) -> Result<Algorithm, AuthError> {
    let allowed = provider.algorithms();
    alg.parse::<Algorithm>()
        .ok()
        .filter(|parsed| allowed.contains(parsed))
        .ok_or_else(|| AuthError::UnsupportedAlgorithm {
            alg: alg.to_string(),
            accepted: allowed
                .iter()
                .map(|candidate| format!("{candidate:?}"))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Signature, `iss` and `aud`. Times are left to `check_times`, because
/// `jsonwebtoken` reads the system clock.
fn verified_claims(
    token: &str,
    key: &DecodingKey,
    alg: Algorithm,
    provider: &Provider,
) -> Result<Map<String, Value>, AuthError> {
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.required_spec_claims = ["iss".to_string()].into();
    let issuer = provider.issuer().trim_end_matches('/');
    validation.set_issuer(&[issuer.to_string(), format!("{issuer}/")]);
    match provider.application_id() {
        Some(application_id) => {
            validation.set_audience(&[application_id]);
            validation.required_spec_claims.insert("aud".to_string());
        }
        None => validation.validate_aud = false,
    }
    jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map(|data| data.claims)
        .map_err(|error| rejection(error.into_kind()))
}

fn rejection(kind: ErrorKind) -> AuthError {
    match kind {
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim { claim },
        ErrorKind::InvalidIssuer => AuthError::InvalidClaim {
            claim: "iss",
            problem: "it does not match the provider's issuer",
        },
        ErrorKind::InvalidAudience => AuthError::InvalidClaim {
            claim: "aud",
            problem: "it does not contain the provider's applicationID",
        },
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthError::Malformed,
        _ => AuthError::InvalidSignature,
    }
}

/// Checks `exp` (required), `nbf` and `iat` against our clock, and returns
/// `exp`.
fn check_times(claims: &Map<String, Value>, now: u64) -> Result<u64, AuthError> {
    let expires_at = seconds_claim(claims, "exp")?.ok_or_else(|| AuthError::MissingClaim {
        claim: "exp".to_string(),
    })?;
    if now > expires_at.saturating_add(LEEWAY_SECS) {
        return Err(AuthError::Expired {
            seconds: now - expires_at,
        });
    }
    for claim in ["nbf", "iat"] {
        if let Some(starts) = seconds_claim(claims, claim)? {
            if starts > now.saturating_add(LEEWAY_SECS) {
                return Err(AuthError::NotYetValid {
                    claim,
                    seconds: starts - now,
                });
            }
        }
    }
    Ok(expires_at)
}

/// A NumericDate claim (RFC 7519 §2), fractions dropped.
fn seconds_claim(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<u64>, AuthError> {
    let Some(value) = claims.get(claim) else {
        return Ok(None);
    };
    value
        .as_f64()
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map(|seconds| Some(seconds as u64))
        .ok_or(AuthError::InvalidClaim {
            claim,
            problem: "it must be a number of seconds since the epoch",
        })
}

fn string_claim(claims: &Map<String, Value>, claim: &str) -> Result<String, AuthError> {
    claims
        .get(claim)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| AuthError::MissingClaim {
            claim: claim.to_string(),
        })
}
