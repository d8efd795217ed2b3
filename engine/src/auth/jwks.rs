//! Each provider's keys, fetched lazily and cached.
//!
//! A token whose `kid` is not cached triggers a refetch (the issuer may have
//! rotated its keys), but at most one fetch per provider every
//! `REFETCH_INTERVAL_SECS`: anyone can mint tokens with random `kid`s, and
//! they must not make us hammer the issuer. A fetch failure is remembered for
//! the same time, for the same reason. Concurrent verifications wait for one
//! in-flight fetch instead of starting their own. Keys are also refreshed
//! once they are `MAX_KEY_AGE_SECS` old, so a key the issuer withdrew stops
//! working; if that refresh fails, the old keys stay in use.

use std::sync::{Arc, PoisonError, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey};
use reqwest::{Client, Url};

use super::fetch::{jwks_by_discovery, jwks_from_data_uri, jwks_from_url};
use super::keys::{select, KeySet};
use super::providers::{JwksLocation, Kind, Provider};
use super::AuthError;

const REFETCH_INTERVAL_SECS: u64 = 30;
const MAX_KEY_AGE_SECS: u64 = 60 * 60;

pub(super) enum KeySource {
    /// A `data:` URI, decoded once when the verifier is built.
    Inline(Result<KeySet, AuthError>),
    Remote(RemoteKeys),
}

pub(super) struct RemoteKeys {
    location: Location,
    cached: RwLock<Snapshot>,
    /// Held while fetching, so that one fetch serves every waiting token.
    fetching: tokio::sync::Mutex<()>,
}

enum Location {
    Url(Url),
    Discovery { domain: String },
}

#[derive(Clone)]
struct Snapshot {
    keys: KeySet,
    loaded_at: Option<u64>,
    attempted_at: Option<u64>,
    /// The last fetch's failure, reported while no key matches.
    error: Option<AuthError>,
}

impl KeySource {
    pub(super) fn new(provider: &Provider) -> Self {
        match &provider.0 {
            Kind::Oidc { domain, .. } => KeySource::remote(Location::Discovery {
                domain: domain.clone(),
            }),
            Kind::CustomJwt { jwks, .. } => match jwks {
                JwksLocation::Url(url) => KeySource::remote(Location::Url(url.clone())),
                JwksLocation::DataUri(uri) => KeySource::Inline(jwks_from_data_uri(uri)),
            },
        }
    }

    /// The key to verify a token with `kid` and `alg`, fetching if needed.
    pub(super) async fn find(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        http: &Client,
        now: u64,
    ) -> Result<DecodingKey, AuthError> {
        match self {
            KeySource::Inline(keys) => {
                let keys = keys.as_ref().map_err(Clone::clone)?;
                select(keys, kid, alg).map_err(|miss| miss.into_error(kid, alg))
            }
            KeySource::Remote(remote) => remote.find(kid, alg, http, now).await,
        }
    }

    fn remote(location: Location) -> Self {
        KeySource::Remote(RemoteKeys {
            location,
            cached: RwLock::new(Snapshot {
                keys: Arc::from([]),
                loaded_at: None,
                attempted_at: None,
                error: None,
            }),
            fetching: tokio::sync::Mutex::new(()),
        })
    }
}

impl RemoteKeys {
    async fn find(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        http: &Client,
        now: u64,
    ) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.snapshot().usable_key(kid, alg, now) {
            return Ok(key);
        }
        let _only_fetch = self.fetching.lock().await;
        let mut snapshot = self.snapshot();
        if snapshot.usable_key(kid, alg, now).is_none() && snapshot.may_fetch(now) {
            snapshot = self.refresh(snapshot, http, now).await;
        }
        select(&snapshot.keys, kid, alg).map_err(|miss| {
            snapshot
                .error
                .clone()
                .unwrap_or_else(|| miss.into_error(kid, alg))
        })
    }

    fn snapshot(&self) -> Snapshot {
        self.cached
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn refresh(&self, previous: Snapshot, http: &Client, now: u64) -> Snapshot {
        let fetched = match &self.location {
            Location::Url(url) => jwks_from_url(http, url).await,
            Location::Discovery { domain } => jwks_by_discovery(http, domain).await,
        };
        let next = match fetched {
            Ok(keys) => Snapshot {
                keys,
                loaded_at: Some(now),
                attempted_at: Some(now),
                error: None,
            },
            Err(error) => {
                tracing::warn!("fetching auth provider keys failed: {error}");
                Snapshot {
                    attempted_at: Some(now),
                    error: Some(error),
                    ..previous
                }
            }
        };
        *self.cached.write().unwrap_or_else(PoisonError::into_inner) = next.clone();
        next
    }
}

impl Snapshot {
    /// A cached key that needs no fetch: found, and not due for refresh.
    fn usable_key(&self, kid: Option<&str>, alg: Algorithm, now: u64) -> Option<DecodingKey> {
        let fresh = self
            .loaded_at
            .is_some_and(|loaded| now < loaded.saturating_add(MAX_KEY_AGE_SECS));
        fresh.then(|| select(&self.keys, kid, alg).ok()).flatten()
    }

    fn may_fetch(&self, now: u64) -> bool {
        self.attempted_at
            .is_none_or(|attempted| now >= attempted.saturating_add(REFETCH_INTERVAL_SECS))
    }
}
