//! `parse_providers`: what deploys, and the errors for what does not.

use serde_json::{json, Value};

use super::support::{data_uri, jwks, rsa_jwk, with};
use crate::auth::{parse_providers, ProviderError};

/// Shaped like the config of Convex's own auth tests: four custom JWT
/// providers, one without applicationID, and two whose JWKS cannot work
/// (an address that serves none, a data: URI that is not JSON).
#[test]
fn convex_suite_shaped_config_deploys() {
    let keys = data_uri(&jwks(&[rsa_jwk("key-1")]));
    let config = json!({ "providers": [
        {"type": "customJwt", "applicationID": "App 1", "issuer": "https://issuer.example.com/1",
         "jwks": keys, "algorithm": "RS256"},
        {"type": "customJwt", "issuer": "https://issuer.example.com/no-aud-specified",
         "jwks": keys, "algorithm": "RS256"},
        {"type": "customJwt", "applicationID": "App 3", "issuer": "https://issuer.example.com/3",
         "jwks": "https://example.com/not/a/jwks", "algorithm": "RS256"},
        {"type": "customJwt", "applicationID": "App 4", "issuer": "https://issuer.example.com/4",
         "jwks": "data:invalid,not-a-valid-jwks", "algorithm": "RS256"},
    ]});
    let providers = parse_providers(&config).unwrap();
    let shown: Vec<String> = providers.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "CustomJWT(issuer=https://issuer.example.com/1, app_id=App 1)",
            "CustomJWT(issuer=https://issuer.example.com/no-aud-specified, app_id=none)",
            "CustomJWT(issuer=https://issuer.example.com/3, app_id=App 3)",
            "CustomJWT(issuer=https://issuer.example.com/4, app_id=App 4)",
        ]
    );
}

#[test]
fn oidc_providers_and_empty_lists_deploy() {
    let config = json!({ "providers": [
        {"domain": "https://clerk.example.com", "applicationID": "convex"},
        {"type": "oidc", "domain": "http://localhost:3000/", "applicationID": "convex"},
    ]});
    let shown: Vec<String> = parse_providers(&config)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown[0],
        "OIDC(domain=https://clerk.example.com, app_id=convex)"
    );
    assert_eq!(parse_providers(&json!({"providers": []})).unwrap(), []);
}

fn problem(provider: Value) -> String {
    let config = json!({ "providers": [{"domain": "https://ok.example.com", "applicationID": "a"}, provider] });
    match parse_providers(&config).unwrap_err() {
        ProviderError::Invalid { index: 1, problem } => problem,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn invalid_providers_are_named_with_their_field() {
    let custom = |changes: Value| {
        let provider = json!({"type": "customJwt", "issuer": "https://i.example.com",
            "jwks": "https://i.example.com/jwks", "algorithm": "RS256"});
        with(provider, changes)
    };
    let cases = [
        (json!({"applicationID": "a"}), "missing `domain`"),
        (
            json!({"domain": "https://d.example.com"}),
            "missing `applicationID`",
        ),
        (
            json!({"domain": "d.example.com", "applicationID": "a"}),
            "`domain` \"d.example.com\" is not an http(s) URL",
        ),
        (
            json!("https://d.example.com"),
            "a provider must be an object",
        ),
        (custom(json!({"type": "jwt"})), "unknown `type` \"jwt\""),
        (
            custom(json!({"algorithm": "HS256"})),
            "unsupported `algorithm` \"HS256\"",
        ),
        (custom(json!({"algorithm": null})), "missing `algorithm`"),
        (
            custom(json!({"issuer": "my-issuer"})),
            "`issuer` \"my-issuer\" is not an http(s) URL",
        ),
        (custom(json!({"issuer": null})), "missing `issuer`"),
        (
            custom(json!({"jwks": "/jwks.json"})),
            "`jwks` must be an http(s) URL or a data: URI",
        ),
        (
            custom(json!({"jwks": "ftp://i.example.com/jwks"})),
            "`jwks` must be an http(s) URL",
        ),
        (
            custom(json!({"applicationID": 7})),
            "`applicationID` must be a string",
        ),
    ];
    for (provider, expected) in cases {
        let problem = problem(provider.clone());
        assert!(problem.contains(expected), "{provider}: {problem}");
    }
}

#[test]
fn errors_name_the_provider_index() {
    let error = parse_providers(&json!({ "providers": [{"domain": "https://a.example.com"}] }))
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "Invalid auth provider at index 0 in auth.config.ts: missing `applicationID`"
    );
}

#[test]
fn config_must_have_a_providers_array() {
    for config in [json!(null), json!([]), json!({}), json!({"providers": {}})] {
        assert_eq!(
            parse_providers(&config).unwrap_err(),
            ProviderError::NotAConfig
        );
    }
}
