//! Attacks on access tokens, each against `/profile`: every one is a 401.
//! A hand-signed token with the right header and claims is accepted, so
//! each refusal is the work of the control under test.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const SECRET: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

fn sign(header: &Value, claims: &Value, key: &[u8]) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(key),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A server, a logged-in user, and the claims of that user's real token.
async fn setup() -> (TestApp, String, Value) {
    let app = spawn_app(&[("PALISADE_JWT_SECRET", SECRET)]).await;
    app.register("ada_l").await;
    let token = app.login("ada_l").await.access_token;
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (app, token, claims)
}

fn header() -> Value {
    json!({"alg": "HS256", "typ": "at+jwt"})
}

async fn assert_refused(app: &TestApp, token: &str, what: &str) {
    let response = app.get_profile(token).await;
    assert_eq!(response.status(), 401, "{what} was accepted");
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\"",
        "{what}"
    );
}

#[tokio::test]
async fn a_hand_signed_token_with_the_right_header_and_claims_is_accepted() {
    let (app, _, claims) = setup().await;
    let token = sign(&header(), &claims, SECRET.as_bytes());
    assert_eq!(app.get_profile(&token).await.status(), 200);
}

#[tokio::test]
async fn alg_none_in_any_case_is_refused() {
    let (app, _, claims) = setup().await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(&json!({"alg": alg, "typ": "at+jwt"})),
            b64(&claims)
        );
        assert_refused(&app, &unsigned, alg).await;
    }
}

#[tokio::test]
async fn a_stripped_or_foreign_signature_is_refused() {
    let (app, token, claims) = setup().await;
    let stripped = token.rsplit_once('.').unwrap().0.to_owned() + ".";
    assert_refused(&app, &stripped, "stripped signature").await;
    let no_dot = token.rsplit_once('.').unwrap().0.to_owned();
    assert_refused(&app, &no_dot, "two-part token").await;
    let foreign = sign(
        &header(),
        &claims,
        b"another-key-another-key-another-key-0123",
    );
    assert_refused(&app, &foreign, "another key").await;
}

#[tokio::test]
async fn tampered_claims_under_the_old_signature_are_refused() {
    let (app, token, claims) = setup().await;
    let signature = token.rsplit('.').next().unwrap();
    for (field, value) in [
        ("role", json!("super_admin")),
        ("sub", json!("00000000-0000-7000-8000-000000000000")),
        ("exp", json!(now() + 999_999)),
    ] {
        let mut forged = claims.clone();
        forged[field] = value;
        let token = format!("{}.{}.{signature}", b64(&header()), b64(&forged));
        assert_refused(&app, &token, field).await;
    }
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let (app, _, claims) = setup().await;
    let mut expired = claims.clone();
    expired["exp"] = json!(now() - 3600);
    expired["iat"] = json!(now() - 7200);
    assert_refused(
        &app,
        &sign(&header(), &expired, SECRET.as_bytes()),
        "expired",
    )
    .await;
    let mut early = claims.clone();
    early["nbf"] = json!(now() + 3600);
    assert_refused(
        &app,
        &sign(&header(), &early, SECRET.as_bytes()),
        "nbf in the future",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_issuer_or_audience_is_refused() {
    let (app, _, claims) = setup().await;
    for (field, value) in [("iss", "evil"), ("aud", "another-api")] {
        let mut forged = claims.clone();
        forged[field] = json!(value);
        assert_refused(&app, &sign(&header(), &forged, SECRET.as_bytes()), field).await;
    }
    for field in ["iss", "aud", "exp", "nbf", "sub"] {
        let mut missing = claims.clone();
        missing.as_object_mut().unwrap().remove(field);
        assert_refused(&app, &sign(&header(), &missing, SECRET.as_bytes()), field).await;
    }
}

#[tokio::test]
async fn a_token_without_the_at_jwt_type_is_refused() {
    let (app, _, claims) = setup().await;
    assert_refused(
        &app,
        &sign(&json!({"alg": "HS256"}), &claims, SECRET.as_bytes()),
        "typ missing",
    )
    .await;
    assert_refused(
        &app,
        &sign(
            &json!({"alg": "HS256", "typ": "JWT"}),
            &claims,
            SECRET.as_bytes(),
        ),
        "typ JWT",
    )
    .await;
}

#[tokio::test]
async fn another_algorithm_is_refused_even_with_an_hmac_signature() {
    let (app, _, claims) = setup().await;
    for alg in ["RS256", "HS512", "ES256", "PS256", "EdDSA"] {
        let token = sign(
            &json!({"alg": alg, "typ": "at+jwt"}),
            &claims,
            SECRET.as_bytes(),
        );
        assert_refused(&app, &token, alg).await;
    }
}

#[tokio::test]
async fn key_selection_headers_are_refused() {
    let (app, _, claims) = setup().await;
    for (name, value) in [
        ("kid", json!("../../dev/null")),
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("jwk", json!({"kty": "oct", "k": "c2VjcmV0"})),
    ] {
        let mut h = header();
        h[name] = value;
        assert_refused(&app, &sign(&h, &claims, SECRET.as_bytes()), name).await;
    }
}

#[tokio::test]
async fn a_token_in_the_query_string_is_ignored() {
    let (app, token, _) = setup().await;
    for query in ["access_token", "token"] {
        let response = app.get(&format!("/profile?{query}={token}")).await;
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn malformed_authorization_headers_are_refused() {
    let (app, token, _) = setup().await;
    for value in [
        format!("Basic {token}"),
        "Bearer".to_owned(),
        format!("Bearer  {token}x"),
        format!("Token {token}"),
    ] {
        let response = app
            .client
            .get(app.url("/profile"))
            .header("authorization", value.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{value}");
    }
    let lower = app
        .client
        .get(app.url("/profile"))
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lower.status(),
        200,
        "the scheme is case-insensitive (RFC 7235)"
    );
}

/// A token "issued" after now would outlive the next password change (its
/// `iat_ms` would not predate it): `iat` or `iat_ms` beyond the leeway is
/// refused, even with a valid signature.
#[tokio::test]
async fn a_token_issued_in_the_future_is_refused() {
    let (app, _, claims) = setup().await;
    let ahead = now() + 3_600;
    let mut both = claims.clone();
    both["iat"] = json!(ahead);
    both["iat_ms"] = json!(ahead * 1_000);
    assert_refused(
        &app,
        &sign(&header(), &both, SECRET.as_bytes()),
        "iat in the future",
    )
    .await;
    let mut ms_only = claims.clone();
    ms_only["iat_ms"] = json!(ahead * 1_000);
    assert_refused(
        &app,
        &sign(&header(), &ms_only, SECRET.as_bytes()),
        "iat_ms in the future",
    )
    .await;
    // Within the leeway (30 s) it is clock skew, and accepted.
    let mut skewed = claims;
    skewed["iat_ms"] = json!((now() + 10) * 1_000);
    let token = sign(&header(), &skewed, SECRET.as_bytes());
    assert_eq!(app.get_profile(&token).await.status(), 200);
}
