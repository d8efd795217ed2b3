//! Verifies users' JWTs the way Convex does, against the providers of
//! `convex/auth.config.ts` (OIDC and `customJwt`), and turns them into the
//! `UserIdentity` that `ctx.auth.getUserIdentity()` returns.
//!
//! The engine parses the config at deploy ([`parse_providers`]), keeps one
//! [`Verifier`] per deployed config (it caches the providers' keys), and
//! calls [`Verifier::verify`] for each token a client presents.

mod errors;
mod fetch;
mod identity;
mod jwks;
mod keys;
mod providers;
mod token;
mod verify;

#[cfg(test)]
mod test_keys;
#[cfg(test)]
mod tests;

pub use errors::AuthError;
pub use identity::Identity;
pub use providers::{parse_providers, Provider, ProviderError};
pub use verify::{Verifier, LEEWAY_SECS};
