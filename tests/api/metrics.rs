//! `GET /metrics`: behind a token on the main listener or on a listener
//! of its own; the text passes `promtool check metrics`; counters move
//! with what happens; labels carry no user, address, token or raw path.

use std::process::{Command, Stdio};

use crate::helpers::{PASSWORD, TestApp, spawn_app};

const TOKEN: &str = "metrics-token-0123456789abcdefghijklmnopqrstuv";

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    response.text().await.unwrap()
}

/// The value of the sample whose name and labels start with `series`
/// (e.g. `palisade_logins_total{outcome="failure"}`), 0 if absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0.0, |v| v.parse().unwrap())
}

fn promtool_check(text: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/metrics/promtool.sh");
    let found = Command::new("bash").arg(script).output().unwrap();
    assert!(
        found.status.success(),
        "promtool: {}",
        String::from_utf8_lossy(&found.stderr)
    );
    let promtool = String::from_utf8(found.stdout).unwrap().trim().to_owned();
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn metrics_are_off_by_default_and_need_the_token_on_the_main_listener() {
    let off = spawn_app(&[]).await;
    assert_eq!(off.get("/metrics").await.status(), 404);

    let app = spawn_app(&[("PALISADE_METRICS_TOKEN", TOKEN)]).await;
    let none = app.get("/metrics").await;
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let wrong = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("metrics-token-0123456789abcdefghijklmnopqrstuw")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // A user's access token is not the metrics token.
    app.register("scraper").await;
    let tokens = app.login("scraper").await;
    assert_eq!(
        app.get_as(&app.url("/metrics"), &tokens.access_token)
            .await
            .status(),
        401
    );
    scrape(&app).await;
}

#[tokio::test]
async fn the_text_is_valid_and_counters_move_with_what_happens() {
    let app = spawn_app(&[
        ("PALISADE_METRICS_TOKEN", TOKEN),
        (
            "PALISADE_RATE_LIMIT_POLICIES",
            "data=1/minute per ip; register=1000/minute per ip; login=1000/minute per ip",
        ),
    ])
    .await;
    let user = app.register("counted").await;
    let before = scrape(&app).await;
    // Counters are process-wide (other tests in this process add to them):
    // compare at least.
    let failures = r#"palisade_logins_total{outcome="failure"}"#;
    let successes = r#"palisade_logins_total{outcome="success"}"#;
    let refusals = r#"palisade_rate_limit_refusals_total{policy="data"}"#;
    assert_eq!(
        app.token_request("counted", "wrong password")
            .await
            .status(),
        400
    );
    let tokens = app.login("counted").await;
    assert_eq!(app.get("/api/data").await.status(), 200);
    assert_eq!(app.get("/api/data").await.status(), 429);
    let logout = app
        .client
        .post(app.url("/auth/logout"))
        .bearer_auth(&tokens.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    let after = scrape(&app).await;
    assert!(
        value(&after, failures) >= value(&before, failures) + 1.0,
        "{after}"
    );
    assert!(value(&after, successes) >= value(&before, successes) + 1.0);
    assert!(value(&after, refusals) >= value(&before, refusals) + 1.0);
    let logouts = r#"palisade_sessions_ended_total{reason="logout"}"#;
    assert!(value(&after, logouts) >= value(&before, logouts) + 1.0);
    let data_429 = r#"palisade_http_requests_total{route="/api/data",method="GET",status="4xx"}"#;
    assert!(value(&after, data_429) >= 1.0, "{after}");
    for gauge in [
        r#"palisade_db_pool_connections{state="idle"}"#,
        r#"palisade_hash_jobs{state="running"}"#,
    ] {
        assert!(
            after.lines().any(|l| l.starts_with(gauge)),
            "{gauge} missing"
        );
    }
    assert!(after.contains("palisade_http_request_duration_seconds_bucket{"));
    // No label holds a user id, an address or a token.
    let id = user["id"].as_str().unwrap();
    for secret in [
        id,
        "127.0.0.1",
        &tokens.access_token,
        &tokens.refresh_token,
        PASSWORD,
    ] {
        assert!(!after.contains(secret), "the scrape holds {secret}");
    }
    promtool_check(&after);
}

#[tokio::test]
async fn a_scan_of_random_paths_adds_no_series() {
    let app = spawn_app(&[("PALISADE_METRICS_TOKEN", TOKEN)]).await;
    for i in 0..40 {
        assert_eq!(
            app.get(&format!("/scan-{i}/wp-admin.php")).await.status(),
            404
        );
    }
    let text = scrape(&app).await;
    assert!(!text.contains("scan-"), "a raw path became a label");
    assert!(text.contains(r#"route="unmatched""#));
    // Route templates, not paths.
    app.register("templated").await;
    let id = "0195f3b2-7c1e-7d4a-9b7e-2f1c3d4e5f60";
    app.get(&format!("/users/{id}")).await;
    let text = scrape(&app).await;
    assert!(!text.contains(id));
    assert!(text.contains(r#"route="/users/{user_id}""#), "{text}");
}

#[tokio::test]
async fn a_listener_of_its_own_serves_metrics_without_a_token() {
    let app = spawn_app(&[("PALISADE_METRICS_BIND", "127.0.0.1:0")]).await;
    let addr = app.metrics_addr.unwrap();
    let response = app
        .client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("palisade_db_pool_connections"));
    // Only /metrics there; and not on the main listener without a token.
    let other = app
        .client
        .get(format!("http://{addr}/profile"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    assert_eq!(app.get("/metrics").await.status(), 404);
}
