//! Rate limits over real sockets: the seed's 10/minute, the headers, and
//! which address a request is counted by.

use crate::helpers::{TestApp, problem, spawn_app};

async fn get_from(app: &TestApp, forwarded_for: &str) -> reqwest::Response {
    app.client
        .get(app.url("/api/data"))
        .header("x-forwarded-for", forwarded_for)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_eleventh_request_in_a_minute_is_refused_with_the_three_headers() {
    let app = spawn_app(&[]).await;
    for n in 0..10 {
        let response = app.get("/api/data").await;
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(response.headers()["ratelimit-policy"], "\"data\";q=10;w=60");
        let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(
            state.starts_with(&format!("\"data\";r={};t=", 9 - n)),
            "{state}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body, serde_json::json!({"data": "limited", "status": "ok"}));
    }
    let response = app.get("/api/data").await;
    let headers = response.headers().clone();
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&retry), "Retry-After {retry}");
    assert_eq!(headers["ratelimit-policy"], "\"data\";q=10;w=60");
    assert_eq!(
        headers["ratelimit"].to_str().unwrap(),
        format!("\"data\";r=0;t={retry}")
    );
    problem(response, 429).await;
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_change_the_key() {
    let app = spawn_app(&[("PALISADE_RATE_LIMIT_POLICIES", "data=2/minute per ip")]).await;
    assert_eq!(get_from(&app, "1.1.1.1").await.status(), 200);
    assert_eq!(get_from(&app, "2.2.2.2").await.status(), 200);
    assert_eq!(get_from(&app, "3.3.3.3").await.status(), 429);
    let response = app
        .client
        .get(app.url("/api/data"))
        .header("forwarded", "for=4.4.4.4")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_changes_the_key() {
    let app = spawn_app(&[
        ("PALISADE_RATE_LIMIT_POLICIES", "data=2/minute per ip"),
        ("PALISADE_TRUSTED_PROXIES", "127.0.0.0/8"),
    ])
    .await;
    assert_eq!(get_from(&app, "1.1.1.1").await.status(), 200);
    assert_eq!(get_from(&app, "1.1.1.1").await.status(), 200);
    assert_eq!(get_from(&app, "1.1.1.1").await.status(), 429);
    assert_eq!(
        get_from(&app, "2.2.2.2").await.status(),
        200,
        "another client behind the proxy"
    );
    // The client cannot prepend its way out: the right-most untrusted hop counts.
    assert_eq!(get_from(&app, "9.9.9.9, 1.1.1.1").await.status(), 429);
}

#[tokio::test]
async fn ipv6_clients_are_keyed_by_their_prefix() {
    let app = spawn_app(&[
        ("PALISADE_RATE_LIMIT_POLICIES", "data=2/minute per ip"),
        ("PALISADE_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    // Three addresses inside one /56 share one bucket...
    assert_eq!(get_from(&app, "2001:db8:1:200::1").await.status(), 200);
    assert_eq!(get_from(&app, "2001:db8:1:2ff:ffff::9").await.status(), 200);
    assert_eq!(get_from(&app, "2001:db8:1:2aa::7").await.status(), 429);
    // ...and the next /56 has its own.
    assert_eq!(get_from(&app, "2001:db8:1:300::1").await.status(), 200);
}

#[tokio::test]
async fn the_ipv6_prefix_is_a_setting() {
    let app = spawn_app(&[
        ("PALISADE_RATE_LIMIT_POLICIES", "data=1/minute per ip"),
        ("PALISADE_TRUSTED_PROXIES", "127.0.0.1"),
        ("PALISADE_IPV6_PREFIX", "128"),
    ])
    .await;
    assert_eq!(get_from(&app, "2001:db8::1").await.status(), 200);
    assert_eq!(get_from(&app, "2001:db8::2").await.status(), 200);
    assert_eq!(get_from(&app, "2001:db8::1").await.status(), 429);
}

#[tokio::test]
async fn routes_not_named_get_the_default_policy() {
    let app = spawn_app(&[("PALISADE_RATE_LIMIT_POLICIES", "default=2/minute per ip")]).await;
    let first = app.get("/health/live").await;
    assert_eq!(first.headers()["ratelimit-policy"], "\"default\";q=2;w=60");
    assert_eq!(app.get("/no/such/path").await.status(), 404);
    problem(app.get("/health/live").await, 429).await;
}

#[tokio::test]
async fn a_route_can_carry_several_policies() {
    let app = spawn_app(&[
        (
            "PALISADE_RATE_LIMIT_POLICIES",
            "burst=3/second per ip; slow=2/hour per ip",
        ),
        ("PALISADE_RATE_LIMIT_ROUTES", "GET /api/data=burst,slow"),
    ])
    .await;
    let first = app.get("/api/data").await;
    assert_eq!(
        first.headers()["ratelimit-policy"],
        "\"burst\";q=3;w=1, \"slow\";q=2;w=3600"
    );
    assert_eq!(app.get("/api/data").await.status(), 200);
    let refused = app.get("/api/data").await;
    assert_eq!(refused.status(), 429);
    assert!(
        refused.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .contains("\"slow\";r=0")
    );
}

#[tokio::test]
async fn limits_can_be_turned_off() {
    let app = spawn_app(&[
        ("PALISADE_RATE_LIMIT_ENABLED", "false"),
        ("PALISADE_RATE_LIMIT_POLICIES", "data=1/minute per ip"),
    ])
    .await;
    for _ in 0..3 {
        let response = app.get("/api/data").await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("ratelimit").is_none());
    }
}

#[tokio::test]
async fn head_requests_are_limited_like_get() {
    let app = spawn_app(&[("PALISADE_RATE_LIMIT_POLICIES", "data=2/minute per ip")]).await;
    let head = || app.client.head(app.url("/api/data")).send();
    assert_eq!(head().await.unwrap().status(), 200);
    let second = head().await.unwrap();
    assert_eq!(second.headers()["ratelimit-policy"], "\"data\";q=2;w=60");
    assert_eq!(head().await.unwrap().status(), 429);
    assert_eq!(
        app.get("/api/data").await.status(),
        429,
        "HEAD and GET share the bucket"
    );
}
