//! `customJwt` providers whose JWKS is a `data:` URI: no network at all.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use super::support::{
    claims, custom_jwt, data_uri, jwks, rsa_jwk, unsigned, verifier, with, Signer, TestClock, NOW,
};
use crate::auth::test_keys::RSA_PUBLIC_PEM;
use crate::auth::{AuthError, Verifier};

const ISSUER: &str = "https://issuer.example.com/1";
const NO_AUD_ISSUER: &str = "https://issuer.example.com/no-aud-specified";
const APP: &str = "App 1";

/// Two RS256 providers on one key, the second without an applicationID.
fn rsa_verifier(clock: &TestClock) -> Verifier {
    let keys = data_uri(&jwks(&[rsa_jwk("key-1")]));
    verifier(
        json!({ "providers": [
            custom_jwt(ISSUER, &keys, "RS256", Some(APP)),
            custom_jwt(NO_AUD_ISSUER, &keys, "RS256", None),
        ]}),
        clock,
    )
}

async fn verify_rsa(claims: &Value) -> Result<crate::auth::Identity, AuthError> {
    let token = Signer::rsa("key-1").sign(claims);
    rsa_verifier(&TestClock::new()).verify(&token).await
}

#[tokio::test]
async fn valid_rs256_token_gives_convex_identity() {
    let token_claims = with(
        claims(ISSUER, APP),
        json!({
            "name": "Presley", "given_name": "Elvis", "email_verified": true,
            "properties": {"id": "123", "favColor": "blue"}, "roles": ["admin"],
        }),
    );
    let identity = verify_rsa(&token_claims).await.unwrap();
    assert_eq!(
        identity.json,
        json!({
            "tokenIdentifier": format!("{ISSUER}|user-1"), "subject": "user-1", "issuer": ISSUER,
            "name": "Presley", "given_name": "Elvis", "email_verified": true,
            "properties.id": "123", "properties.favColor": "blue", "roles": ["admin"],
        })
    );
    assert_eq!(identity.expires_at, Some(NOW + 3600));
}

#[tokio::test]
async fn valid_es256_token_is_accepted() {
    let (signer, jwk) = Signer::es256("ec-1");
    let keys = data_uri(&jwks(&[jwk]));
    let config = json!({ "providers": [custom_jwt(ISSUER, &keys, "ES256", Some(APP))] });
    let token = signer.sign(&claims(ISSUER, APP));
    let identity = verifier(config, &TestClock::new())
        .verify(&token)
        .await
        .unwrap();
    assert_eq!(identity.json["subject"], "user-1");
}

#[tokio::test]
async fn token_signed_by_another_key_is_rejected() {
    let token = Signer::impostor("key-1").sign(&claims(ISSUER, APP));
    let error = rsa_verifier(&TestClock::new())
        .verify(&token)
        .await
        .unwrap_err();
    assert_eq!(error, AuthError::InvalidSignature);
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let token = unsigned(
        &json!({"alg": "none", "kid": "key-1"}),
        &claims(ISSUER, APP),
    );
    let error = rsa_verifier(&TestClock::new())
        .verify(&token)
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::UnsupportedAlgorithm { alg, .. } if alg == "none"));
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key_is_rejected() {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("key-1".into());
    let secret = EncodingKey::from_secret(RSA_PUBLIC_PEM.as_bytes());
    let token = jsonwebtoken::encode(&header, &claims(ISSUER, APP), &secret).unwrap();
    let error = rsa_verifier(&TestClock::new())
        .verify(&token)
        .await
        .unwrap_err();
    assert!(matches!(error, AuthError::UnsupportedAlgorithm { alg, .. } if alg == "HS256"));
}

#[tokio::test]
async fn algorithm_other_than_the_providers_is_rejected() {
    let (signer, _) = Signer::es256("key-1");
    let error = rsa_verifier(&TestClock::new())
        .verify(&signer.sign(&claims(ISSUER, APP)))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AuthError::UnsupportedAlgorithm { accepted, .. } if accepted == "RS256")
    );
}

#[tokio::test]
async fn unknown_issuer_names_the_configured_providers() {
    let error = verify_rsa(&claims("https://unknown.example.com", APP))
        .await
        .unwrap_err();
    assert_eq!(error.code(), "NoAuthProvider");
    let message = error.to_string();
    assert!(message.contains("No auth provider found matching the given token"));
    assert!(message.contains("CustomJWT(issuer=https://issuer.example.com/1, app_id=App 1)"));
    assert!(message.contains(&format!("CustomJWT(issuer={NO_AUD_ISSUER}, app_id=none)")));
}

#[tokio::test]
async fn wrong_or_missing_audience_matches_no_provider() {
    let wrong = verify_rsa(&claims(ISSUER, "App 2")).await.unwrap_err();
    assert!(matches!(wrong, AuthError::NoProvider { .. }));
    let missing = verify_rsa(&with(claims(ISSUER, APP), json!({"aud": null})))
        .await
        .unwrap_err();
    assert!(matches!(missing, AuthError::NoProvider { .. }));
}

#[tokio::test]
async fn audience_is_not_checked_without_application_id() {
    let any_audience = verify_rsa(&claims(NO_AUD_ISSUER, "anything")).await;
    assert!(any_audience.is_ok());
    let no_audience = verify_rsa(&with(claims(NO_AUD_ISSUER, ""), json!({"aud": null}))).await;
    assert!(no_audience.is_ok());
}

#[tokio::test]
async fn issuer_may_differ_by_a_trailing_slash() {
    let identity = verify_rsa(&claims(&format!("{ISSUER}/"), APP))
        .await
        .unwrap();
    assert_eq!(identity.json["issuer"], format!("{ISSUER}/"));
}

#[tokio::test]
async fn audience_may_be_a_list() {
    let token_claims = with(claims(ISSUER, APP), json!({"aud": ["other", APP]}));
    assert!(verify_rsa(&token_claims).await.is_ok());
}

#[tokio::test]
async fn expiry_allows_five_seconds_of_skew() {
    let just_expired = with(claims(ISSUER, APP), json!({"exp": NOW - 3}));
    assert!(verify_rsa(&just_expired).await.is_ok());
    let expired = with(claims(ISSUER, APP), json!({"exp": NOW - 10}));
    let error = verify_rsa(&expired).await.unwrap_err();
    assert_eq!(error, AuthError::Expired { seconds: 10 });
    assert!(error.to_string().contains("Token expired 10 seconds ago"));
}

#[tokio::test]
async fn token_from_the_future_is_rejected() {
    let nbf = with(claims(ISSUER, APP), json!({"nbf": NOW + 60}));
    assert_eq!(
        verify_rsa(&nbf).await.unwrap_err(),
        AuthError::NotYetValid {
            claim: "nbf",
            seconds: 60
        }
    );
    let iat = with(claims(ISSUER, APP), json!({"iat": NOW + 10}));
    let error = verify_rsa(&iat).await.unwrap_err();
    assert!(error.to_string().contains("will be valid in 10 seconds"));
    let slightly_early = with(claims(ISSUER, APP), json!({"iat": NOW + 3, "nbf": NOW + 3}));
    assert!(verify_rsa(&slightly_early).await.is_ok());
    let no_iat = with(claims(ISSUER, APP), json!({"iat": null}));
    assert!(verify_rsa(&no_iat).await.is_ok());
}

#[tokio::test]
async fn exp_and_sub_are_required() {
    let no_exp = with(claims(ISSUER, APP), json!({"exp": null}));
    assert_eq!(
        verify_rsa(&no_exp).await.unwrap_err(),
        AuthError::MissingClaim {
            claim: "exp".into()
        }
    );
    let no_sub = with(claims(ISSUER, APP), json!({"sub": null}));
    assert_eq!(
        verify_rsa(&no_sub).await.unwrap_err(),
        AuthError::MissingClaim {
            claim: "sub".into()
        }
    );
    let text_exp = with(claims(ISSUER, APP), json!({"exp": "tomorrow"}));
    assert!(matches!(
        verify_rsa(&text_exp).await.unwrap_err(),
        AuthError::InvalidClaim { claim: "exp", .. }
    ));
}

#[tokio::test]
async fn key_must_be_named_and_known() {
    let verifier = rsa_verifier(&TestClock::new());
    let unknown = Signer::rsa("key-2").sign(&claims(ISSUER, APP));
    let error = verifier.verify(&unknown).await.unwrap_err();
    assert_eq!(
        error,
        AuthError::UnknownKeyId {
            kid: "key-2".into()
        }
    );
    assert!(error.to_string().contains("Could not decode token"));
    let unnamed = Signer::rsa("key-1")
        .without_kid()
        .sign(&claims(ISSUER, APP));
    let error = verifier.verify(&unnamed).await.unwrap_err();
    assert_eq!(error, AuthError::MissingKeyId);
    assert!(error.to_string().contains("missing a 'kid'"));
}

#[tokio::test]
async fn malformed_tokens_are_rejected() {
    let verifier = rsa_verifier(&TestClock::new());
    let valid = Signer::rsa("key-1").sign(&claims(ISSUER, APP));
    let (header, rest) = valid.split_once('.').unwrap();
    let not_json = format!("{header}.bm90IGpzb24.c2ln");
    for token in [
        "",
        "not.a.jwt",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        &not_json,
        &format!("{valid}.x"),
    ] {
        let error = verifier.verify(token).await.unwrap_err();
        assert_eq!(error, AuthError::Malformed, "token {token:?}");
        assert!(error.to_string().contains("three base64-encoded parts"));
    }
    let tampered = format!("{header}.{}", rest.replacen('e', "f", 1));
    assert!(verifier.verify(&tampered).await.is_err());
}

#[tokio::test]
async fn missing_issuer_is_reported() {
    let error = verify_rsa(&with(claims(ISSUER, APP), json!({"iss": null})))
        .await
        .unwrap_err();
    assert_eq!(error, AuthError::MissingIssuer);
    assert_eq!(error.code(), "InvalidAuthHeader");
}

#[tokio::test]
async fn undecodable_data_uris_fail_only_their_tokens() {
    let not_json = "data:invalid,not-a-valid-jwks";
    let not_base64 = "data:application/json;base64,@@@";
    let config = json!({ "providers": [
        custom_jwt("https://issuer.example.com/4", not_json, "RS256", Some("App 4")),
        custom_jwt("https://issuer.example.com/5", not_base64, "RS256", Some("App 5")),
    ]});
    let verifier = verifier(config, &TestClock::new());
    let signer = Signer::rsa("key-1");
    let token = signer.sign(&claims("https://issuer.example.com/4", "App 4"));
    let error = verifier.verify(&token).await.unwrap_err().to_string();
    assert!(error.contains("Invalid JWKS response body") && error.contains("not valid JSON"));
    let token = signer.sign(&claims("https://issuer.example.com/5", "App 5"));
    assert_eq!(
        verifier.verify(&token).await.unwrap_err(),
        AuthError::JwksDataUri
    );
}

#[tokio::test]
async fn percent_encoded_data_uri_is_decoded() {
    let encoded: String = jwks(&[rsa_jwk("key-1")])
        .bytes()
        .map(|byte| format!("%{byte:02X}"))
        .collect();
    let keys = format!("data:application/json,{encoded}");
    let config = json!({ "providers": [custom_jwt(ISSUER, &keys, "RS256", Some(APP))] });
    let token = Signer::rsa("key-1").sign(&claims(ISSUER, APP));
    assert!(verifier(config, &TestClock::new())
        .verify(&token)
        .await
        .is_ok());
}
