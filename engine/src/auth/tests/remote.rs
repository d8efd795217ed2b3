//! Keys fetched over HTTP, from a `customJwt` URL or by OIDC discovery,
//! served by a local test server: caching, rotation, rate limits, failures.

use std::sync::Arc;

use serde_json::json;

use super::server::TestServer;
use super::support::{claims, custom_jwt, jwks, rsa_jwk, verifier, Signer, TestClock, NOW};
use crate::auth::{AuthError, Verifier};

const APP: &str = "my-app";
const JWKS_PATH: &str = "/jwks.json";
const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// A `customJwt` provider whose JWKS (holding `rsa_jwk("key-1")`) is served.
async fn custom_jwt_setup(clock: &TestClock) -> (TestServer, Verifier) {
    let server = TestServer::start().await;
    server.serve(JWKS_PATH, jwks(&[rsa_jwk("key-1")]));
    let provider = custom_jwt(&server.base, &server.url(JWKS_PATH), "RS256", Some(APP));
    let verifier = verifier(json!({ "providers": [provider] }), clock);
    (server, verifier)
}

/// An OIDC provider whose discovery document names `issuer`.
async fn oidc_setup(clock: &TestClock, issuer_suffix: &str) -> (TestServer, Verifier) {
    let server = TestServer::start().await;
    let discovery = json!({
        "issuer": format!("{}{issuer_suffix}", server.base),
        "jwks_uri": server.url(JWKS_PATH),
    });
    server.serve(DISCOVERY_PATH, discovery.to_string());
    let provider = json!({ "domain": server.base, "applicationID": APP });
    let verifier = verifier(json!({ "providers": [provider] }), clock);
    (server, verifier)
}

fn rsa_token(server: &TestServer, kid: &str) -> String {
    Signer::rsa(kid).sign(&claims(&server.base, APP))
}

#[tokio::test]
async fn keys_are_fetched_once_and_cached() {
    let clock = TestClock::new();
    let (server, verifier) = custom_jwt_setup(&clock).await;
    for _ in 0..3 {
        verifier.verify(&rsa_token(&server, "key-1")).await.unwrap();
    }
    assert_eq!(server.hits(JWKS_PATH), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_verifications_share_one_fetch() {
    let clock = TestClock::new();
    let (server, verifier) = custom_jwt_setup(&clock).await;
    let verifier = Arc::new(verifier);
    let token = rsa_token(&server, "key-1");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (verifier, token) = (verifier.clone(), token.clone());
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(server.hits(JWKS_PATH), 1);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_every_30_seconds() {
    let clock = TestClock::new();
    let (server, verifier) = custom_jwt_setup(&clock).await;
    verifier.verify(&rsa_token(&server, "key-1")).await.unwrap();
    let unknown = |kid: &str| AuthError::UnknownKeyId { kid: kid.into() };

    // Just fetched: an unknown kid is not worth another fetch yet.
    let error = verifier
        .verify(&rsa_token(&server, "random-1"))
        .await
        .unwrap_err();
    assert_eq!((error, server.hits(JWKS_PATH)), (unknown("random-1"), 1));

    clock.advance(31);
    let error = verifier
        .verify(&rsa_token(&server, "random-2"))
        .await
        .unwrap_err();
    assert_eq!((error, server.hits(JWKS_PATH)), (unknown("random-2"), 2));

    clock.advance(10);
    let error = verifier
        .verify(&rsa_token(&server, "random-3"))
        .await
        .unwrap_err();
    assert_eq!((error, server.hits(JWKS_PATH)), (unknown("random-3"), 2));

    clock.advance(21);
    let error = verifier
        .verify(&rsa_token(&server, "random-4"))
        .await
        .unwrap_err();
    assert_eq!((error, server.hits(JWKS_PATH)), (unknown("random-4"), 3));
}

#[tokio::test]
async fn invalid_jwks_body_is_reported() {
    let clock = TestClock::new();
    let (server, verifier) = custom_jwt_setup(&clock).await;
    server.serve(JWKS_PATH, "<html>");
    let error = verifier
        .verify(&rsa_token(&server, "key-1"))
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::JwksInvalid { .. }), "{error}");
}

#[tokio::test]
async fn fetch_failures_are_reported_and_not_retried_at_once() {
    let clock = TestClock::new();
    let server = TestServer::start().await;
    let provider = custom_jwt(&server.base, &server.url(JWKS_PATH), "RS256", Some(APP));
    let verifier = verifier(json!({ "providers": [provider] }), &clock);
    let token = rsa_token(&server, "key-1");
    let error = verifier.verify(&token).await.unwrap_err().to_string();
    assert!(
        error.contains("HTTP 404 Not Found") && error.contains("accessible"),
        "{error}"
    );
    verifier.verify(&token).await.unwrap_err();
    assert_eq!(server.hits(JWKS_PATH), 1);

    server.serve(JWKS_PATH, jwks(&[rsa_jwk("key-1")]));
    clock.advance(30);
    verifier.verify(&token).await.unwrap();
    assert_eq!(server.hits(JWKS_PATH), 2);
}

#[tokio::test]
async fn oversized_jwks_is_refused() {
    let clock = TestClock::new();
    let (server, verifier) = custom_jwt_setup(&clock).await;
    server.serve(JWKS_PATH, " ".repeat(2 << 20));
    let error = verifier
        .verify(&rsa_token(&server, "key-1"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("larger than"), "{error}");
}

#[tokio::test]
async fn keys_are_refreshed_after_an_hour() {
    let clock = TestClock::new();
    let (server, verifier) = custom_jwt_setup(&clock).await;
    verifier.verify(&rsa_token(&server, "key-1")).await.unwrap();
    clock.advance(3601);
    let token = Signer::rsa("key-1").sign(&json!({
        "iss": server.base, "aud": APP, "sub": "u", "exp": NOW + 100_000,
    }));
    verifier.verify(&token).await.unwrap();
    assert_eq!(server.hits(JWKS_PATH), 2);
    // A withdrawn key stops working at the next refresh.
    server.serve(JWKS_PATH, jwks(&[]));
    clock.advance(3601);
    let error = verifier.verify(&token).await.unwrap_err();
    assert_eq!(
        error,
        AuthError::UnknownKeyId {
            kid: "key-1".into()
        }
    );
}

#[tokio::test]
async fn oidc_discovery_gives_keys_and_mapped_identity() {
    let clock = TestClock::new();
    let (server, verifier) = oidc_setup(&clock, "").await;
    server.serve(JWKS_PATH, jwks(&[rsa_jwk("key-1")]));
    let mut token_claims = claims(&server.base, APP);
    token_claims["given_name"] = json!("Ada");
    token_claims["picture"] = json!("https://example.com/ada.png");
    token_claims["org"] = json!({"id": "o1"});
    let identity = verifier
        .verify(&Signer::rsa("key-1").sign(&token_claims))
        .await
        .unwrap();
    assert_eq!(
        identity.json,
        json!({
            "tokenIdentifier": format!("{}|user-1", server.base), "subject": "user-1",
            "issuer": server.base, "givenName": "Ada",
            "pictureUrl": "https://example.com/ada.png", "org": {"id": "o1"},
        })
    );
    assert_eq!(
        (server.hits(DISCOVERY_PATH), server.hits(JWKS_PATH)),
        (1, 1)
    );
}

#[tokio::test]
async fn oidc_key_rotation_refetches_once() {
    let clock = TestClock::new();
    let (server, verifier) = oidc_setup(&clock, "/").await;
    let (old, old_jwk) = Signer::es256("old");
    server.serve(JWKS_PATH, jwks(std::slice::from_ref(&old_jwk)));
    let issuer = format!("{}/", server.base);
    verifier
        .verify(&old.sign(&claims(&issuer, APP)))
        .await
        .unwrap();

    clock.advance(31);
    let (new, new_jwk) = Signer::es256("new");
    server.serve(JWKS_PATH, jwks(&[old_jwk, new_jwk]));
    verifier
        .verify(&new.sign(&claims(&issuer, APP)))
        .await
        .unwrap();
    verifier
        .verify(&old.sign(&claims(&issuer, APP)))
        .await
        .unwrap();
    assert_eq!(
        (server.hits(DISCOVERY_PATH), server.hits(JWKS_PATH)),
        (2, 2)
    );
}

#[tokio::test]
async fn oidc_accepts_eddsa_and_a_lone_key_without_kid() {
    let clock = TestClock::new();
    let (server, verifier) = oidc_setup(&clock, "").await;
    let (signer, jwk) = Signer::ed25519("ed");
    server.serve(JWKS_PATH, jwks(&[jwk, rsa_jwk("key-1")]));
    let token = signer.without_kid().sign(&claims(&server.base, APP));
    verifier.verify(&token).await.unwrap();
}

#[tokio::test]
async fn oidc_without_kid_and_several_keys_is_rejected() {
    let clock = TestClock::new();
    let (server, verifier) = oidc_setup(&clock, "").await;
    let (_, other_jwk) = Signer::es256("b");
    let (signer, jwk) = Signer::es256("a");
    server.serve(JWKS_PATH, jwks(&[jwk, other_jwk]));
    let token = signer.without_kid().sign(&claims(&server.base, APP));
    let error = verifier.verify(&token).await.unwrap_err();
    assert!(matches!(
        error,
        AuthError::NoKeyWithoutKeyId { candidates: 2, .. }
    ));
}

#[tokio::test]
async fn oidc_rejects_hmac() {
    let clock = TestClock::new();
    let (server, verifier) = oidc_setup(&clock, "").await;
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("key-1".into());
    let secret = jsonwebtoken::EncodingKey::from_secret(b"secret");
    let token = jsonwebtoken::encode(&header, &claims(&server.base, APP), &secret).unwrap();
    let error = verifier.verify(&token).await.unwrap_err();
    assert!(matches!(error, AuthError::UnsupportedAlgorithm { .. }));
    assert_eq!(server.hits(DISCOVERY_PATH), 0);
}

#[tokio::test]
async fn oidc_discovery_must_name_the_domain_as_issuer() {
    let clock = TestClock::new();
    let (server, verifier) = oidc_setup(&clock, "/someone-else").await;
    server.serve(JWKS_PATH, jwks(&[rsa_jwk("key-1")]));
    let error = verifier
        .verify(&rsa_token(&server, "key-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthError::DiscoveryFailed { .. }),
        "{error}"
    );
    assert_eq!(error.code(), "AuthProviderDiscoveryFailed");
    assert_eq!(server.hits(JWKS_PATH), 0);
}
