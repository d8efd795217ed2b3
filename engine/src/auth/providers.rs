//! The auth providers of `convex/auth.config.ts`: checking them at deploy
//! (`parse_providers`) and the rules that follow from each kind, i.e. which
//! tokens it claims and which algorithms it allows.
//!
//! Parsing checks only the shape of the configuration. Whether a `jwks` URL
//! answers or a `data:` URI decodes is found out when a token for that issuer
//! arrives: Convex deploys such providers, and its own test suite relies on it.

use std::fmt;

use jsonwebtoken::Algorithm;
use reqwest::Url;
use serde_json::{Map, Value};

use super::identity::ClaimStyle;

/// One entry of `providers` in `auth.config.ts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider(pub(super) Kind);

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// `{ domain, applicationID }`: keys come from OpenID Connect discovery.
    Oidc {
        domain: String,
        application_id: String,
    },
    /// `{ type: "customJwt", issuer, jwks, algorithm, applicationID? }`.
    CustomJwt {
        issuer: String,
        jwks: JwksLocation,
        algorithm: Algorithm,
        application_id: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JwksLocation {
    Url(Url),
    /// Kept verbatim: it is decoded when the verifier is built.
    DataUri(String),
}

/// Algorithms OIDC providers may sign with: Convex's RS256 and EdDSA, plus
/// ES256, which `customJwt` providers may already use.
const OIDC_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why `auth.config.ts` was refused at deploy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("auth.config.ts must default-export an object with a `providers` array")]
    NotAConfig,
    #[error("Invalid auth provider at index {index} in auth.config.ts: {problem}")]
    Invalid { index: usize, problem: String },
}

/// Reads the default export of `auth.config.ts` (`{ providers: [...] }`).
pub fn parse_providers(config: &Value) -> Result<Vec<Provider>, ProviderError> {
    let entries = config
        .get("providers")
        .and_then(Value::as_array)
        .ok_or(ProviderError::NotAConfig)?;
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            parse_provider(entry).map_err(|problem| ProviderError::Invalid { index, problem })
        })
        .collect()
}

fn parse_provider(entry: &Value) -> Result<Provider, String> {
    let fields = entry.as_object().ok_or("a provider must be an object")?;
    let kind = match optional_string(fields, "type")? {
        None | Some("oidc") => parse_oidc(fields)?,
        Some("customJwt") => parse_custom_jwt(fields)?,
        Some(other) => {
            return Err(format!(
                "unknown `type` \"{other}\" (expected \"customJwt\", or no `type` for an OIDC \
                 provider)"
            ))
        }
    };
    Ok(Provider(kind))
}

fn parse_oidc(fields: &Map<String, Value>) -> Result<Kind, String> {
    let domain = required_string(fields, "domain")?;
    http_url(domain).ok_or_else(|| format!("`domain` \"{domain}\" is not an http(s) URL"))?;
    Ok(Kind::Oidc {
        domain: domain.to_string(),
        application_id: required_string(fields, "applicationID")?.to_string(),
    })
}

fn parse_custom_jwt(fields: &Map<String, Value>) -> Result<Kind, String> {
    let issuer = required_string(fields, "issuer")?;
    http_url(issuer).ok_or_else(|| format!("`issuer` \"{issuer}\" is not an http(s) URL"))?;
    Ok(Kind::CustomJwt {
        issuer: issuer.to_string(),
        jwks: parse_jwks_location(required_string(fields, "jwks")?)?,
        algorithm: parse_algorithm(required_string(fields, "algorithm")?)?,
        application_id: optional_string(fields, "applicationID")?.map(str::to_string),
    })
}

fn parse_jwks_location(jwks: &str) -> Result<JwksLocation, String> {
    if is_data_uri(jwks) {
        return Ok(JwksLocation::DataUri(jwks.to_string()));
    }
    http_url(jwks)
        .map(JwksLocation::Url)
        .ok_or_else(|| "`jwks` must be an http(s) URL or a data: URI".to_string())
}

fn parse_algorithm(algorithm: &str) -> Result<Algorithm, String> {
    match algorithm {
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        other => Err(format!(
            "unsupported `algorithm` \"{other}\" (expected \"RS256\" or \"ES256\")"
        )),
    }
}

fn required_string<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    optional_string(fields, name)?.ok_or_else(|| format!("missing `{name}`"))
}

fn optional_string<'a>(
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

fn http_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
}

pub(super) fn is_data_uri(text: &str) -> bool {
    text.get(..5)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("data:"))
}

/// Issuers are compared without trailing slashes: providers (Auth0 among
/// them) put one in `iss` that developers often leave out of the config.
pub(super) fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

impl Provider {
    /// The issuer (`iss`) this provider's tokens carry.
    pub(super) fn issuer(&self) -> &str {
        match &self.0 {
            Kind::Oidc { domain, .. } => domain,
            Kind::CustomJwt { issuer, .. } => issuer,
        }
    }

    pub(super) fn application_id(&self) -> Option<&str> {
        match &self.0 {
            Kind::Oidc { application_id, .. } => Some(application_id),
            Kind::CustomJwt { application_id, .. } => application_id.as_deref(),
        }
    }

    /// Whether a token with this (unverified) issuer and audience is meant
    /// for this provider. As in Convex, the audience decides too: a token
    /// whose `aud` lacks the application ID matches no provider at all.
    pub(super) fn claims_token(&self, issuer: &str, audiences: &[String]) -> bool {
        same_issuer(self.issuer(), issuer)
            && self
                .application_id()
                .is_none_or(|app| audiences.iter().any(|aud| aud == app))
    }

    pub(super) fn algorithms(&self) -> &[Algorithm] {
        match &self.0 {
            Kind::Oidc { .. } => &OIDC_ALGORITHMS,
            Kind::CustomJwt { algorithm, .. } => std::slice::from_ref(algorithm),
        }
    }

    /// Convex's custom JWTs must name their key; OIDC tokens may leave it out
    /// when the issuer publishes a single key for the algorithm.
    pub(super) fn requires_key_id(&self) -> bool {
        matches!(self.0, Kind::CustomJwt { .. })
    }

    pub(super) fn claim_style(&self) -> ClaimStyle {
        match self.0 {
            Kind::Oidc { .. } => ClaimStyle::Oidc,
            Kind::CustomJwt { .. } => ClaimStyle::CustomJwt,
        }
    }
}

/// Convex's way of listing a provider in "no provider found" errors.
impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let app_id = self.application_id().unwrap_or("none");
        match &self.0 {
            Kind::Oidc { domain, .. } => write!(f, "OIDC(domain={domain}, app_id={app_id})"),
            Kind::CustomJwt { issuer, .. } => {
                write!(f, "CustomJWT(issuer={issuer}, app_id={app_id})")
            }
        }
    }
}
