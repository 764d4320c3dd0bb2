//! Security headers on every kind of response.

use axum::Router;
use axum::routing::get;

use crate::helpers::{assert_hardened, spawn_app, spawn_stack};

#[tokio::test]
async fn every_security_header_is_on_a_200() {
    let app = spawn_app(&[]).await;
    let response = app.get("/api/data").await;
    assert_eq!(response.status(), 200);
    assert_hardened(&response);
}

#[tokio::test]
async fn every_security_header_is_on_a_404_and_a_405() {
    let app = spawn_app(&[]).await;
    assert_hardened(&app.get("/no/such/thing").await);
    let response = app
        .client
        .delete(app.url("/api/data"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_hardened(&response);
}

#[tokio::test]
async fn every_security_header_is_on_a_429() {
    let app = spawn_app(&[("PALISADE_RATE_LIMIT_POLICIES", "data=1/minute per ip")]).await;
    assert_eq!(app.get("/api/data").await.status(), 200);
    let response = app.get("/api/data").await;
    assert_eq!(response.status(), 429);
    assert_hardened(&response);
}

#[tokio::test]
async fn every_security_header_is_on_a_500_from_a_panic() {
    let router = Router::new().route("/boom", get(crate::errors::boom));
    let app = spawn_stack(router, &[]).await;
    let response = app.get("/boom").await;
    assert_eq!(response.status(), 500);
    assert_hardened(&response);
}

#[tokio::test]
async fn hsts_preload_and_header_overrides_follow_the_settings() {
    let app = spawn_app(&[
        ("PALISADE_HSTS_PRELOAD", "true"),
        ("PALISADE_FRAME_OPTIONS", "SAMEORIGIN"),
        ("PALISADE_PERMISSIONS_POLICY", ""),
    ])
    .await;
    let response = app.get("/health/live").await;
    let h = response.headers();
    assert_eq!(
        h["strict-transport-security"],
        "max-age=63072000; includeSubDomains; preload"
    );
    assert_eq!(h["x-frame-options"], "SAMEORIGIN");
    assert!(h.get("permissions-policy").is_none());
}

#[tokio::test]
async fn hsts_can_be_turned_off() {
    let app = spawn_app(&[("PALISADE_HSTS", "false")]).await;
    assert!(
        app.get("/health/live")
            .await
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
}

#[tokio::test]
async fn hsts_is_left_off_only_when_a_trusted_proxy_says_the_client_used_plain_http() {
    let hsts = |response: &reqwest::Response| {
        response
            .headers()
            .get("strict-transport-security")
            .is_some()
    };
    let from = |app: &crate::helpers::TestApp, proto: &'static str| {
        app.client
            .get(app.url("/health/live"))
            .header("x-forwarded-proto", proto)
            .send()
    };
    let behind = spawn_app(&[("PALISADE_TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    assert!(
        !hsts(&from(&behind, "http").await.unwrap()),
        "trusted proxy, http"
    );
    assert!(
        hsts(&from(&behind, "https").await.unwrap()),
        "trusted proxy, https"
    );
    assert!(
        hsts(&behind.get("/health/live").await),
        "trusted proxy, no claim"
    );
    // Anyone else's claim changes nothing.
    let direct = spawn_app(&[]).await;
    assert!(
        hsts(&from(&direct, "http").await.unwrap()),
        "untrusted peer"
    );
}

#[tokio::test]
async fn a_sane_request_id_is_kept_and_an_insane_one_replaced() {
    let app = spawn_app(&[]).await;
    let kept = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123");
    let replaced = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "evil\" injected=1")
        .send()
        .await
        .unwrap();
    let id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}
