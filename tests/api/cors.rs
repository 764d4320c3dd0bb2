//! CORS preflights from allowed and disallowed origins.

use crate::helpers::{TestApp, spawn_app};

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/api/data"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered() {
    let app = spawn_app(&[("PALISADE_CORS_ALLOWED_ORIGINS", "https://app.example")]).await;
    let response = preflight(&app, "https://app.example").await;
    assert!(response.status().is_success());
    let h = response.headers();
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(h["access-control-max-age"], "3600");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        assert!(methods.contains(m), "{methods}");
    }
    let allowed = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    assert!(h.get("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn a_preflight_from_another_origin_gets_no_permission() {
    let app = spawn_app(&[("PALISADE_CORS_ALLOWED_ORIGINS", "https://app.example")]).await;
    for origin in [
        "https://evil.example",
        "https://app.example.evil.example",
        "http://app.example",
        "null",
    ] {
        let response = preflight(&app, origin).await;
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{origin} was allowed"
        );
    }
}

#[tokio::test]
async fn the_default_allowlist_is_empty() {
    let app = spawn_app(&[]).await;
    let response = preflight(&app, "http://localhost:3000").await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn credentials_are_allowed_only_when_configured_and_only_for_listed_origins() {
    let app = spawn_app(&[
        ("PALISADE_CORS_ALLOWED_ORIGINS", "https://app.example"),
        ("PALISADE_CORS_ALLOW_CREDENTIALS", "true"),
    ])
    .await;
    let response = preflight(&app, "https://app.example").await;
    assert_eq!(
        response.headers()["access-control-allow-credentials"],
        "true"
    );
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let other = preflight(&app, "https://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_simple_request_exposes_the_rate_limit_and_request_id_headers() {
    let app = spawn_app(&[("PALISADE_CORS_ALLOWED_ORIGINS", "https://app.example")]).await;
    let response = app
        .client
        .get(app.url("/api/data"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    for h in [
        "x-request-id",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
    ] {
        assert!(exposed.contains(h), "{exposed}");
    }
}

#[tokio::test]
async fn error_responses_from_outer_layers_carry_cors_headers() {
    let app = crate::helpers::spawn_stack(
        axum::Router::new().route("/boom", axum::routing::get(crate::errors::boom)),
        &[
            ("PALISADE_CORS_ALLOWED_ORIGINS", "https://app.example"),
            ("PALISADE_BODY_LIMIT", "16"),
        ],
    )
    .await;
    let panic = app
        .client
        .get(app.url("/boom"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(panic.status(), 500);
    assert_eq!(
        panic.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let big = app
        .client
        .post(app.url("/boom"))
        .header("origin", "https://app.example")
        .body("x".repeat(64))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.headers()["access-control-allow-origin"],
        "https://app.example"
    );
}
