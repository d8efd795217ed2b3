//! Where a provider's JWKS comes from: an https URL, OpenID Connect discovery
//! in front of one, or a `data:` URI in the config. Every network read is
//! bounded in time and size, since the issuer is outside our control.

use std::time::Duration;

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use reqwest::header::ACCEPT;
use reqwest::{Client, Url};
use serde::Deserialize;

use super::keys::{parse_jwks, KeySet};
use super::providers::same_issuer;
use super::AuthError;

const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_BODY_BYTES: usize = 1 << 20;

/// Data URIs are written by hand, so padding may be there or not.
const DATA_URI_BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    jwks_uri: String,
}

pub(super) async fn jwks_from_url(http: &Client, url: &Url) -> Result<KeySet, AuthError> {
    let body = get(http, url)
        .await
        .map_err(|reason| AuthError::JwksUnreachable {
            url: url.to_string(),
            reason,
        })?;
    parse_jwks(&body, &format!("'{url}'"))
}

/// OIDC discovery (`<domain>/.well-known/openid-configuration`), then its
/// `jwks_uri`. The document must name the domain as its issuer, or keys of
/// some other issuer could be trusted for this one.
pub(super) async fn jwks_by_discovery(http: &Client, domain: &str) -> Result<KeySet, AuthError> {
    let failed = |reason: String| AuthError::DiscoveryFailed {
        domain: domain.to_string(),
        reason,
    };
    let document_url = format!(
        "{}/.well-known/openid-configuration",
        domain.trim_end_matches('/')
    );
    let document_url = Url::parse(&document_url).map_err(|e| failed(e.to_string()))?;
    let body = get(http, &document_url).await.map_err(failed)?;
    let document: DiscoveryDocument = serde_json::from_slice(&body)
        .map_err(|e| failed(format!("invalid discovery document: {e}")))?;
    if !same_issuer(&document.issuer, domain) {
        return Err(failed(format!(
            "the discovery document names issuer '{}', not this domain",
            document.issuer
        )));
    }
    let jwks_url = Url::parse(&document.jwks_uri)
        .map_err(|e| failed(format!("invalid jwks_uri '{}': {e}", document.jwks_uri)))?;
    jwks_from_url(http, &jwks_url).await
}

/// Decodes `data:[<mediatype>][;base64],<data>` (RFC 2397) and parses the
/// JWKS in it; the media type is ignored, as Convex ignores it.
pub(super) fn jwks_from_data_uri(uri: &str) -> Result<KeySet, AuthError> {
    let body = decode_data_uri(uri).ok_or(AuthError::JwksDataUri)?;
    parse_jwks(&body, "the `jwks` data: URI")
}

fn decode_data_uri(uri: &str) -> Option<Vec<u8>> {
    let (meta, data) = uri.get(5..)?.split_once(',')?;
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(data).collect();
    let is_base64 = meta
        .rsplit(';')
        .next()
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("base64"));
    if !is_base64 {
        return Some(bytes);
    }
    let compact: Vec<u8> = bytes
        .into_iter()
        .filter(|byte| !byte.is_ascii_whitespace())
        .collect();
    DATA_URI_BASE64.decode(compact).ok()
}

/// GETs a small JSON document; the error is a reason for the client.
async fn get(http: &Client, url: &Url) -> Result<Vec<u8>, String> {
    let mut response = http
        .get(url.clone())
        .header(ACCEPT, "application/json")
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let too_large = || format!("response larger than {MAX_BODY_BYTES} bytes");
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
