//! The session cache: a valid token is answered from memory, and every
//! event that ends or changes a session or a user reaches every instance's
//! cache before the acting request answers, including the operator CLI's
//! changes. Each test first proves the instances hold the session (their
//! hit counters move), so an invalidation that did not arrive would show
//! as a 200.
//!
//! Instances share a Redis of their own (never the shared one). In the
//! SQLite run the instances share one SQLite file: the first serves the
//! file's control socket and caches; in the PostgreSQL run every instance
//! caches through Redis.

use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, make_admin, spawn_app, spawn_cluster};
use crate::redis_server::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_palisade");

fn hits(app: &TestApp) -> u64 {
    app.state.sessions.counters().hits.load(Ordering::Relaxed)
}

fn caching(app: &TestApp) -> bool {
    app.state.sessions.channel() != palisade::cache::Channel::Off
}

/// Waits until every instance's cache is in use (the control socket is
/// served, or the Redis heartbeat was heard) or off (no channel, or
/// another instance serves the SQLite file's socket).
pub async fn until_usable(apps: &[TestApp]) {
    let start = Instant::now();
    while !apps
        .iter()
        .all(|a| !caching(a) || a.state.sessions.usable())
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the session caches never became usable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// GET /profile twice on every instance, asserting 200 and that each
/// caching instance answered the second from its cache.
pub async fn cache_everywhere(apps: &[TestApp], token: &str) {
    for app in apps {
        let before = hits(app);
        for _ in 0..2 {
            assert_eq!(app.get_profile(token).await.status(), 200);
        }
        if caching(app) {
            assert!(hits(app) > before, "instance at {} did not cache", app.addr);
        }
    }
    assert!(
        apps.iter().any(caching),
        "no instance caches: the test would prove nothing"
    );
}

pub async fn assert_refused_everywhere(apps: &[TestApp], token: &str, event: &str) {
    for app in apps {
        let status = app.get_profile(token).await.status();
        assert_eq!(
            status, 401,
            "{event}: instance at {} still accepts",
            app.addr
        );
    }
}

async fn cluster(redis: &RedisServer) -> Vec<TestApp> {
    let url = redis.url();
    let apps = spawn_cluster(
        3,
        &[
            ("REDIS_URL", url.as_str()),
            (
                "PALISADE_RATE_LIMIT_POLICIES",
                "default=100000/minute per ip; register=100000/minute per ip; login=100000/minute per ip",
            ),
        ],
    )
    .await;
    until_usable(&apps).await;
    apps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_profile_request_is_answered_without_the_database() {
    let app = spawn_app(&[]).await;
    until_usable(std::slice::from_ref(&app)).await;
    if !caching(&app) {
        // PostgreSQL without Redis has no channel: never cached.
        assert_eq!(app.state.sessions.channel(), palisade::cache::Channel::Off);
        return;
    }
    app.register("cached").await;
    let token = app.login("cached").await.access_token;
    assert_eq!(app.get_profile(&token).await.status(), 200);
    // The database loses the session behind the cache's back (no event):
    // the cache answers, which proves it is the cache that answered.
    sqlx::query("UPDATE sessions SET expires_at = 0")
        .execute(app.db())
        .await
        .unwrap();
    let before = hits(&app);
    let response = app.get_profile(&token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(hits(&app), before + 1);
    // The entry's own expiry still holds: a token's session is not
    // trusted past the session's end.
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["username"], "cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_session_ending_event_on_one_instance_is_seen_by_every_instance_at_once() {
    let redis = RedisServer::start();
    let apps = cluster(&redis).await;
    let (a, rest) = (&apps[0], &apps[1..]);
    let admin = make_admin(a, "boss").await;

    // Logout.
    a.register("u_logout").await;
    let t = a.login("u_logout").await;
    cache_everywhere(&apps, &t.access_token).await;
    let r = a
        .client
        .post(a.url("/auth/logout"))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_refused_everywhere(&apps, &t.access_token, "logout").await;

    // Revocation of the refresh token (RFC 7009).
    a.register("u_revoke").await;
    let t = a.login("u_revoke").await;
    cache_everywhere(&apps, &t.access_token).await;
    let r = a
        .post_form("/auth/revoke", &[("token", &t.refresh_token)])
        .await;
    assert_eq!(r.status(), 200);
    assert_refused_everywhere(&apps, &t.access_token, "revoke").await;

    // Refresh-token reuse (the default grace is zero).
    a.register("u_reuse").await;
    let t = a.login("u_reuse").await;
    let r = a.refresh(&t.refresh_token).await;
    assert_eq!(r.status(), 200);
    cache_everywhere(&apps, &t.access_token).await;
    let r = a.refresh(&t.refresh_token).await;
    assert_eq!(r.status(), 400);
    assert_refused_everywhere(&apps, &t.access_token, "reuse").await;

    // Password change: every token issued before it.
    a.register("u_password").await;
    let t = a.login("u_password").await;
    cache_everywhere(&apps, &t.access_token).await;
    let r = a
        .client
        .post(a.url("/profile/password"))
        .bearer_auth(&t.access_token)
        .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase 42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_refused_everywhere(&apps, &t.access_token, "password change").await;

    // Account deletion.
    a.register("u_delete").await;
    let t = a.login("u_delete").await;
    cache_everywhere(&apps, &t.access_token).await;
    let r = a
        .client
        .delete(a.url("/account"))
        .bearer_auth(&t.access_token)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_refused_everywhere(&apps, &t.access_token, "account deletion").await;

    // An administrator's role change, disable and delete.
    for (event, patch) in [
        ("role change", Some(json!({"role": "editor"}))),
        ("disable", Some(json!({"disabled": true}))),
        ("admin delete", None),
    ] {
        let name = format!("u_{}", event.replace(' ', "_"));
        let id = a.register(&name).await["id"].as_str().unwrap().to_owned();
        let t = a.login(&name).await;
        cache_everywhere(&apps, &t.access_token).await;
        let url = a.url(&format!("/users/{id}"));
        let r = match &patch {
            Some(body) => a.client.patch(&url).bearer_auth(&admin).json(body),
            None => a.client.delete(&url).bearer_auth(&admin),
        }
        .send()
        .await
        .unwrap();
        assert!(r.status().is_success(), "{event}: {}", r.status());
        assert_refused_everywhere(&apps, &t.access_token, event).await;
    }

    // A profile change is not an end, but every instance sends the new name.
    a.register("u_rename").await;
    let t = a.login("u_rename").await;
    cache_everywhere(&apps, &t.access_token).await;
    let r = a
        .client
        .patch(a.url("/profile"))
        .bearer_auth(&t.access_token)
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for app in rest {
        let body: serde_json::Value = app.get_profile(&t.access_token).await.json().await.unwrap();
        assert_eq!(body["name"], "Renamed", "instance at {}", app.addr);
    }
}

/// `palisade users …` with the settings of `app` (its database, secret and
/// Redis), as an operator runs it beside the servers.
pub(crate) async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    use secrecy::ExposeSecret;
    let settings = &app.state.settings;
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg("--data-dir")
        .arg(&settings.server.data_dir)
        .env_clear()
        .env("PALISADE_LOG_LEVEL", "warn");
    if let Some(url) = &settings.database.url {
        command.env("DATABASE_URL", url.expose_secret());
    }
    if let Some(url) = &settings.redis.url {
        command.env("REDIS_URL", url.expose_secret());
    }
    if settings.auth.jwt_secret.is_some() {
        command.env("PALISADE_JWT_SECRET", crate::helpers::TEST_SECRET);
    }
    if settings.auth.mfa_key.is_some() {
        command.env("PALISADE_MFA_KEY", crate::helpers::TEST_MFA_KEY);
    }
    // The signing settings `keys rotate` and `keys list` read.
    let auth = &settings.auth;
    command
        .env("PALISADE_JWT_ALGORITHM", auth.jwt_algorithm.as_str())
        .env(
            "PALISADE_ACCESS_TOKEN_TTL",
            format!("{}s", auth.access_token_ttl.as_secs()),
        )
        .env("PALISADE_JWT_LEEWAY", format!("{}s", auth.leeway.as_secs()))
        .env(
            "PALISADE_KEY_SET_REFRESH",
            format!("{}ms", auth.key_set_refresh.as_millis()),
        )
        .env(
            "PALISADE_SIGNING_KEY_PUBLISH_DELAY",
            format!("{}ms", auth.signing_key_publish_delay.as_millis()),
        );
    // Gateway mode: its identity key set.
    if let Some(upstream) = &settings.gateway.upstream {
        command.env("PALISADE_GATEWAY_UPSTREAM", upstream.as_str());
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The CLI waits for the servers, which run on this runtime.
    crate::helpers::output_of(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_ends_a_session_cached_on_running_instances() {
    let redis = RedisServer::start();
    let apps = cluster(&redis).await;
    apps[0].register("operated").await;
    let t = apps[0].login("operated").await;
    cache_everywhere(&apps, &t.access_token).await;
    let out = cli(&apps[1], &["users", "disable", "operated"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_refused_everywhere(&apps, &t.access_token, "cli disable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reaches_the_embedded_servers_cache_through_its_control_socket() {
    let app = spawn_app(&[]).await;
    until_usable(std::slice::from_ref(&app)).await;
    if !caching(&app) {
        // PostgreSQL without Redis: no cache to reach (tested above).
        return;
    }
    app.register("local").await;
    let t = app.login("local").await;
    cache_everywhere(std::slice::from_ref(&app), &t.access_token).await;
    let out = cli(&app, &["users", "set-role", "local", "editor"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_refused_everywhere(std::slice::from_ref(&app), &t.access_token, "cli set-role").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_refreshes_on_two_instances_give_exactly_one_success() {
    let redis = RedisServer::start();
    let apps = cluster(&redis).await;
    for round in 0..5 {
        let name = format!("racer{round}");
        apps[0].register(&name).await;
        let t = apps[0].login(&name).await;
        let (x, y) = tokio::join!(
            apps[1].refresh(&t.refresh_token),
            apps[2].refresh(&t.refresh_token)
        );
        let ok = [x.status(), y.status()]
            .iter()
            .filter(|s| s.is_success())
            .count();
        assert_eq!(ok, 1, "round {round}: {} and {}", x.status(), y.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_sessions_are_checked_in_the_database_and_caching_resumes_after() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    let apps = cluster(&redis).await;
    apps[0].register("outage").await;
    let t = apps[0].login("outage").await;
    cache_everywhere(&apps, &t.access_token).await;
    let redis_cached: Vec<&TestApp> = apps
        .iter()
        .filter(|a| a.state.sessions.channel() == palisade::cache::Channel::Redis)
        .collect();
    redis.stop();
    // Every Redis-channel instance stops using its cache within the
    // heartbeat's staleness bound.
    let start = Instant::now();
    while redis_cached.iter().any(|a| a.state.sessions.usable()) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "cache still in use"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A logout now cannot be announced, yet no instance accepts the token:
    // they all read the database.
    let r = apps[0]
        .client
        .post(apps[0].url("/auth/logout"))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_refused_everywhere(&apps, &t.access_token, "logout while Redis is down").await;
    // Redis back: caches flushed and in use again, without a restart.
    let _redis = RedisServer::start_on(port);
    until_usable(&apps).await;
    let t = apps[0].login("outage").await;
    cache_everywhere(&apps, &t.access_token).await;
}

#[tokio::test]
async fn a_zero_ttl_turns_the_cache_off() {
    let app = spawn_app(&[("PALISADE_SESSION_CACHE_TTL", "0s")]).await;
    assert_eq!(app.state.sessions.channel(), palisade::cache::Channel::Off);
    app.register("uncached").await;
    let token = app.login("uncached").await.access_token;
    assert_eq!(app.get_profile(&token).await.status(), 200);
    // Every check reads the database: a session ended behind the cache's
    // back is refused at once.
    sqlx::query("UPDATE sessions SET expires_at = 0")
        .execute(app.db())
        .await
        .unwrap();
    assert_eq!(app.get_profile(&token).await.status(), 401);
}
