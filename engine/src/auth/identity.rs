//! Verified claims as Convex's `UserIdentity` object, the value of
//! `ctx.auth.getUserIdentity()`.
//!
//! Convex shapes it differently per provider kind, and apps depend on it:
//! - OIDC: the standard OIDC claims under camelCase names (`given_name` →
//!   `givenName`, `picture` → `pictureUrl`, ...); other non-protocol claims
//!   as they are.
//! - customJwt: no renaming; nested objects are flattened to dotted keys
//!   (`{"properties": {"id": 1}}` → `"properties.id": 1`), as documented at
//!   docs.convex.dev/auth/advanced/custom-jwt.
//!
//! Both carry `tokenIdentifier` (`iss|sub`), `subject` and `issuer`, which a
//! claim of the same name cannot override.

use serde_json::{Map, Value};

/// A verified user, as functions see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// The `UserIdentity` object.
    pub json: Value,
    /// The token's `exp` (seconds since the epoch), after which a session
    /// must tell its client that the token expired. Verified tokens always
    /// have one.
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ClaimStyle {
    Oidc,
    CustomJwt,
}

/// OIDC string claims and their `UserIdentity` names.
const OIDC_STRINGS: [(&str, &str); 13] = [
    ("name", "name"),
    ("given_name", "givenName"),
    ("family_name", "familyName"),
    ("nickname", "nickname"),
    ("preferred_username", "preferredUsername"),
    ("profile", "profileUrl"),
    ("picture", "pictureUrl"),
    ("email", "email"),
    ("gender", "gender"),
    ("birthdate", "birthday"),
    ("zoneinfo", "timezone"),
    ("locale", "language"),
    ("phone_number", "phoneNumber"),
];

const OIDC_BOOLEANS: [(&str, &str); 2] = [
    ("email_verified", "emailVerified"),
    ("phone_number_verified", "phoneNumberVerified"),
];

/// Claims about the token rather than the user, which Convex leaves out.
/// `fva` (Clerk's factor verification age) grows with every refresh and
/// would needlessly change the identity that queries are cached under.
const OIDC_PROTOCOL_CLAIMS: [&str; 15] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "fva",
];

/// The JWT registered claims (RFC 7519 §4.1) and `fva`, which Convex leaves
/// out of custom-JWT identities.
const CUSTOM_JWT_EXCLUDED: [&str; 8] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "fva"];

pub(super) fn build(
    style: ClaimStyle,
    claims: Map<String, Value>,
    issuer: &str,
    subject: &str,
    expires_at: u64,
) -> Identity {
    let mut json = Map::new();
    json.insert(
        "tokenIdentifier".into(),
        Value::String(format!("{issuer}|{subject}")),
    );
    json.insert("subject".into(), Value::String(subject.to_string()));
    json.insert("issuer".into(), Value::String(issuer.to_string()));
    let attributes = match style {
        ClaimStyle::Oidc => oidc_attributes(claims),
        ClaimStyle::CustomJwt => flattened(claims),
    };
    for (name, value) in attributes {
        json.entry(name).or_insert(value);
    }
    Identity {
        json: Value::Object(json),
        expires_at: Some(expires_at),
    }
}

fn oidc_attributes(mut claims: Map<String, Value>) -> Map<String, Value> {
    let mut attributes = Map::new();
    for (claim, name) in OIDC_STRINGS {
        if let Some(Value::String(text)) = claims.remove(claim) {
            attributes.insert(name.into(), Value::String(text));
        }
    }
    for (claim, name) in OIDC_BOOLEANS {
        if let Some(flag) = claims.remove(claim).as_ref().and_then(boolean) {
            attributes.insert(name.into(), Value::Bool(flag));
        }
    }
    if let Some(address) = claims.remove("address").and_then(address) {
        attributes.insert("address".into(), Value::String(address));
    }
    if let Some(updated_at) = claims.remove("updated_at").and_then(updated_at) {
        attributes.insert("updatedAt".into(), Value::String(updated_at));
    }
    for claim in OIDC_PROTOCOL_CLAIMS {
        claims.remove(claim);
    }
    attributes.extend(claims);
    attributes
}

/// Some issuers (AWS Cognito among them) send booleans as strings.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// OIDC's address is an object; like Convex, keep its `formatted` text.
fn address(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        Value::Object(mut fields) => match fields.remove("formatted") {
            Some(Value::String(text)) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// OIDC's `updated_at` is seconds since the epoch; Convex shows it as an
/// RFC 3339 time. A string is passed through.
fn updated_at(value: Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text),
        Value::Number(seconds) => seconds.as_f64().map(|s| rfc3339(s.floor() as i64)),
        _ => None,
    }
}

fn rfc3339(unix_seconds: i64) -> String {
    let (year, month, day) = civil_date(unix_seconds.div_euclid(86_400));
    let time = unix_seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        time / 3600,
        time % 3600 / 60,
        time % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`), to avoid a date-time dependency for one field.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn flattened(mut claims: Map<String, Value>) -> Map<String, Value> {
    for claim in CUSTOM_JWT_EXCLUDED {
        claims.remove(claim);
    }
    let mut attributes = Map::new();
    flatten_into(&mut attributes, "", claims);
    attributes
}

fn flatten_into(out: &mut Map<String, Value>, prefix: &str, claims: Map<String, Value>) {
    for (name, value) in claims {
        let key = format!("{prefix}{name}");
        match value {
            Value::Object(nested) => flatten_into(out, &format!("{key}."), nested),
            value => {
                out.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00+00:00");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20+00:00");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59+00:00");
    }

    #[test]
    fn oidc_claims_are_renamed_and_protocol_claims_dropped() {
        let identity = build(
            ClaimStyle::Oidc,
            claims(json!({
                "iss": "https://a", "sub": "u", "aud": "app", "exp": 9, "azp": "x",
                "given_name": "Ada", "picture": "https://p", "email_verified": "true",
                "address": {"formatted": "1 Main St", "country": "UK"},
                "updated_at": 1_700_000_000, "locale": "en", "zoneinfo": "Europe/London",
                "name": 42, "org": {"id": "o1"},
            })),
            "https://a",
            "u",
            9,
        );
        assert_eq!(
            identity.json,
            json!({
                "tokenIdentifier": "https://a|u", "subject": "u", "issuer": "https://a",
                "givenName": "Ada", "pictureUrl": "https://p", "emailVerified": true,
                "address": "1 Main St", "updatedAt": "2023-11-14T22:13:20+00:00",
                "language": "en", "timezone": "Europe/London", "org": {"id": "o1"},
            })
        );
        assert_eq!(identity.expires_at, Some(9));
    }

    #[test]
    fn custom_jwt_claims_are_flattened_not_renamed() {
        let identity = build(
            ClaimStyle::CustomJwt,
            claims(json!({
                "iss": "https://a", "sub": "u", "iat": 1, "given_name": "Ada",
                "properties": {"id": "123", "tags": ["a"], "deep": {"x": true}},
                "subject": "spoofed",
            })),
            "https://a",
            "u",
            9,
        );
        assert_eq!(
            identity.json,
            json!({
                "tokenIdentifier": "https://a|u", "subject": "u", "issuer": "https://a",
                "given_name": "Ada", "properties.id": "123", "properties.tags": ["a"],
                "properties.deep.x": true,
            })
        );
    }
}
