//! Peeks into a JWT before its signature is checked, to route it to a
//! provider and pick a key. Nothing read here is trusted: a forged token can
//! at worst choose the wrong provider, whose verification then fails.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::AuthError;

/// What routing needs from a token: its header and the unverified `iss`/`aud`.
pub(super) struct Peek {
    pub alg: String,
    pub kid: Option<String>,
    pub issuer: String,
    pub audiences: Vec<String>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct RoutingClaims {
    iss: Option<Value>,
    aud: Option<Value>,
}

pub(super) fn peek(token: &str) -> Result<Peek, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let header: Header = decode_part(header)?;
    let claims: RoutingClaims = decode_part(payload)?;
    Ok(Peek {
        alg: header.alg,
        kid: header.kid,
        issuer: issuer(claims.iss)?,
        audiences: audiences(claims.aud)?,
    })
}

fn decode_part<T: DeserializeOwned>(part: &str) -> Result<T, AuthError> {
    let json = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)
}

fn issuer(iss: Option<Value>) -> Result<String, AuthError> {
    match iss {
        None | Some(Value::Null) => Err(AuthError::MissingIssuer),
        Some(Value::String(iss)) => Ok(iss),
        Some(_) => Err(AuthError::InvalidClaim {
            claim: "iss",
            problem: "it must be a string",
        }),
    }
}

/// `aud` may be one string or an array of them (RFC 7519 §4.1.3).
fn audiences(aud: Option<Value>) -> Result<Vec<String>, AuthError> {
    let invalid = AuthError::InvalidClaim {
        claim: "aud",
        problem: "it must be a string or an array of strings",
    };
    match aud {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(aud)) => Ok(vec![aud]),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(aud) => Ok(aud),
                _ => Err(invalid.clone()),
            })
            .collect(),
        Some(_) => Err(invalid),
    }
}
