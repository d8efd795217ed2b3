//! Why a token was refused. Every message a client can see lives here, so
//! they can be kept close to Convex's wording (its own test suite matches on
//! parts of them) in one place.

/// A token that could not be turned into an identity. `Display` is the
/// message for the client; [`AuthError::code`] is Convex's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error(
        "Could not parse JWT payload. Check that the token is a valid JWT format with three \
         base64-encoded parts separated by dots."
    )]
    Malformed,
    #[error(
        "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' claim that \
         matches one of your configured auth providers."
    )]
    MissingIssuer,
    #[error("{}", no_provider_message(.configured))]
    NoProvider {
        /// The configured providers, as `Provider`'s `Display` shows them.
        configured: Vec<String>,
    },
    #[error(
        "Could not decode token. The JWT's 'alg' header is '{alg}', but this auth provider \
         accepts only {accepted}."
    )]
    UnsupportedAlgorithm { alg: String, accepted: String },
    #[error("Could not decode token. JWT may be missing a 'kid' (key ID) header.")]
    MissingKeyId,
    #[error(
        "Could not decode token. The JWT's 'kid' (key ID) header is '{kid}', does this key \
         match any key in the provider's JWKS?"
    )]
    UnknownKeyId { kid: String },
    #[error(
        "Could not find public key for JWT: it has no 'kid' (key ID) header and the provider's \
         JWKS has {candidates} {alg} keys, so none can be chosen."
    )]
    NoKeyWithoutKeyId { alg: String, candidates: usize },
    #[error("Could not decode token. The JWT signature is invalid.")]
    InvalidSignature,
    #[error("Missing '{claim}' claim in JWT payload.")]
    MissingClaim { claim: String },
    #[error("Invalid '{claim}' claim in JWT payload: {problem}.")]
    InvalidClaim {
        claim: &'static str,
        problem: &'static str,
    },
    #[error("Could not validate token: Token expired {seconds} seconds ago.")]
    Expired { seconds: u64 },
    #[error(
        "Could not validate token: Token will be valid in {seconds} seconds (its '{claim}' claim \
         is in the future; check for timing issues between the issuer's clock and this \
         server's)."
    )]
    NotYetValid { claim: &'static str, seconds: u64 },
    #[error(
        "Could not fetch JWKS from URL '{url}': {reason}. Check that the URL is correct and \
         accessible."
    )]
    JwksUnreachable { url: String, reason: String },
    #[error(
        "Invalid JWKS response body from {source_desc}. The response is not valid JSON or \
         doesn't match the expected JWKS format."
    )]
    JwksInvalid { source_desc: String },
    #[error(
        "Invalid JWKS data URL. Check that the data URL is properly formatted and contains \
         valid base64-encoded JSON."
    )]
    JwksDataUri,
    #[error("Auth provider discovery of {domain} failed: {reason}")]
    DiscoveryFailed { domain: String, reason: String },
}

impl AuthError {
    /// Convex's error code for this failure, which clients receive beside the
    /// message (e.g. `{"code": "NoAuthProvider", "message": ...}`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::NoProvider { .. } => "NoAuthProvider",
            AuthError::DiscoveryFailed { .. } => "AuthProviderDiscoveryFailed",
            _ => "InvalidAuthHeader",
        }
    }
}

fn no_provider_message(configured: &[String]) -> String {
    if configured.is_empty() {
        return "No auth provider found matching the given token (no providers configured). \
                Check convex/auth.config.ts."
            .to_string();
    }
    format!(
        "No auth provider found matching the given token. Check that your JWT's issuer and \
         audience match one of your configured providers: [{}]",
        configured.join(", ")
    )
}
