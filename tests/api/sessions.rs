//! `GET /sessions`, `DELETE /sessions/{id}`, `DELETE /sessions`: the
//! caller's own sessions, seen and ended.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{PASSWORD, TestApp, Tokens, problem, spawn_app};

/// Logs `username` in with `agent` as its `User-Agent`.
async fn login_with(app: &TestApp, username: &str, agent: &str) -> Tokens {
    let response = app
        .client
        .post(app.url("/auth/token"))
        .header("user-agent", agent)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn list(app: &TestApp, token: &str) -> Vec<Value> {
    let response = app.get_as(&app.url("/sessions"), token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

/// The id of the listed session that is (or is not) the current one.
fn id_of(items: &[Value], current: bool) -> String {
    items.iter().find(|s| s["current"] == current).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_list_shows_every_open_session_newest_first_with_the_current_flagged() {
    let app = spawn_app(&[]).await;
    app.register("lister").await;
    let _first = login_with(&app, "lister", "agent-a/1.0").await;
    let second = login_with(&app, "lister", "agent-b/2.0").await;

    let items = list(&app, &second.access_token).await;
    assert_eq!(items.len(), 2, "{items:?}");
    let (newest, oldest) = (&items[0], &items[1]);
    assert_eq!(newest["current"], true);
    assert_eq!(newest["user_agent"], "agent-b/2.0");
    assert_eq!(oldest["current"], false);
    assert_eq!(oldest["user_agent"], "agent-a/1.0");
    for session in &items {
        assert_eq!(session["ip"], "127.0.0.1");
        assert_eq!(session["amr"], serde_json::json!(["pwd"]));
        for field in ["created_at", "last_used_at", "expires_at"] {
            let text = session[field].as_str().unwrap();
            assert!(
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .is_ok(),
                "{field}: {text}"
            );
        }
        let keys: Vec<&String> = session.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 8, "{keys:?}");
    }
    // Another user sees only their own.
    app.register("other_lister").await;
    let other = app.login("other_lister").await;
    assert_eq!(list(&app, &other.access_token).await.len(), 1);
    // No token, no list.
    assert_eq!(app.get("/sessions").await.status(), 401);
}

#[tokio::test]
async fn ending_a_session_ends_its_refresh_and_access_tokens_at_once() {
    let app = spawn_app(&[]).await;
    app.register("ender").await;
    let phone = app.login("ender").await;
    let laptop = app.login("ender").await;
    // The phone's token is in the session cache.
    assert_eq!(app.get_profile(&phone.access_token).await.status(), 200);

    let phone_id = id_of(&list(&app, &laptop.access_token).await, false);
    let ended = app
        .delete_as(
            &app.url(&format!("/sessions/{phone_id}")),
            &laptop.access_token,
        )
        .await;
    assert_eq!(ended.status(), 204);
    assert_eq!(app.get_profile(&phone.access_token).await.status(), 401);
    assert_eq!(app.refresh(&phone.refresh_token).await.status(), 400);
    assert_eq!(app.get_profile(&laptop.access_token).await.status(), 200);
    assert_eq!(list(&app, &laptop.access_token).await.len(), 1);
    // Once.
    let again = app
        .delete_as(
            &app.url(&format!("/sessions/{phone_id}")),
            &laptop.access_token,
        )
        .await;
    problem(again, 404).await;
    // In the audit trail, without a token in sight.
    let (count, detail): (i64, Option<String>) = sqlx::query_as(
        "SELECT COUNT(*), MAX(detail) FROM security_events WHERE event = 'session_end'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    assert_eq!(count, 1);
    assert_eq!(detail.as_deref(), Some("one session"));
}

#[tokio::test]
async fn another_users_session_or_a_bad_id_is_404_and_nothing_changes() {
    let app = spawn_app(&[]).await;
    app.register("victim").await;
    app.register("intruder").await;
    let victim = app.login("victim").await;
    let intruder = app.login("intruder").await;
    let victim_id = id_of(&list(&app, &victim.access_token).await, true);

    for id in [
        victim_id.as_str(),
        "not-a-uuid",
        "00000000-0000-7000-8000-000000000000",
    ] {
        let response = app
            .delete_as(&app.url(&format!("/sessions/{id}")), &intruder.access_token)
            .await;
        problem(response, 404).await;
    }
    assert_eq!(app.get_profile(&victim.access_token).await.status(), 200);
    assert_eq!(list(&app, &victim.access_token).await.len(), 1);
}

#[tokio::test]
async fn delete_all_ends_every_session_but_the_current() {
    let app = spawn_app(&[]).await;
    app.register("cleaner").await;
    let a = app.login("cleaner").await;
    let b = app.login("cleaner").await;
    let current = app.login("cleaner").await;
    assert_eq!(app.get_profile(&a.access_token).await.status(), 200);

    let response = app
        .delete_as(&app.url("/sessions"), &current.access_token)
        .await;
    assert_eq!(response.status(), 204);
    for ended in [&a, &b] {
        assert_eq!(app.get_profile(&ended.access_token).await.status(), 401);
        assert_eq!(app.refresh(&ended.refresh_token).await.status(), 400);
    }
    let items = list(&app, &current.access_token).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["current"], true);
    assert_eq!(app.get_profile(&current.access_token).await.status(), 200);
}

async fn last_used(app: &TestApp, id: &str) -> i64 {
    sqlx::query_scalar("SELECT last_used_at FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_one(app.db())
        .await
        .unwrap()
}

async fn set_last_used(app: &TestApp, id: &str, at: i64) {
    sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(at)
        .execute(app.db())
        .await
        .unwrap();
}

#[tokio::test]
async fn last_use_is_written_at_most_once_a_minute_and_at_each_refresh() {
    let app = spawn_app(&[]).await;
    app.register("toucher").await;
    let tokens = app.login("toucher").await;
    // From the database: an authenticated request would be the first use.
    let id: String = sqlx::query_scalar(
        "SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.username = 'toucher'",
    )
    .fetch_one(app.db())
    .await
    .unwrap();
    let now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };

    // An hour ago, as far as the database knows: the next use is written
    // (off the request's path, so wait for it).
    let hour_ago = now() - 3_600_000;
    set_last_used(&app, &id, hour_ago).await;
    let before = now();
    assert_eq!(app.get_profile(&tokens.access_token).await.status(), 200);
    let started = Instant::now();
    while last_used(&app, &id).await < before {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "last use not written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Within the minute, uses are not written again.
    set_last_used(&app, &id, hour_ago).await;
    for _ in 0..5 {
        assert_eq!(app.get_profile(&tokens.access_token).await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(last_used(&app, &id).await, hour_ago);

    // A refresh writes it.
    let before = now();
    assert_eq!(app.refresh(&tokens.refresh_token).await.status(), 200);
    assert!(last_used(&app, &id).await >= before);
}
