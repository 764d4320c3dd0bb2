//! The retention of old rows: the pruner deletes what is past its
//! retention in batches and keeps the rest; `palisade prune [--dry-run]`
//! and `palisade backup` run as the binary against a live server.

use palisade::storage::prune::{self, Retention};
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app};

const DAY: i64 = 24 * 3600 * 1000;

/// Adds rows past their retention (and some that are not) for `user_id`:
/// 3 old sessions with 2 refresh tokens each, 4 old events, 2 old mailed
/// tokens and 1 fresh, 2 old challenges, 1 old device and 1 fresh.
async fn seed(app: &TestApp, user_id: &str) {
    let now = palisade::storage::now_ms();
    let db = app.db();
    for i in 0..3 {
        let session = format!("old-session-{i}");
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, expires_at, ended_at, end_reason, amr, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, 'logout', 'pwd', $3)",
        )
        .bind(&session)
        .bind(user_id)
        .bind(now - 100 * DAY)
        .bind(now + DAY)
        .bind(now - 60 * DAY)
        .execute(db)
        .await
        .unwrap();
        for j in 0..2 {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at, used_at) \
                 VALUES ($1, $2, $3, $4, NULL)",
            )
            .bind(format!("old-token-{i}-{j}"))
            .bind(&session)
            .bind(now - 100 * DAY)
            .bind(now + DAY)
            .execute(db)
            .await
            .unwrap();
        }
    }
    for i in 0..4 {
        sqlx::query("INSERT INTO security_events (id, at, event, user_id) VALUES ($1, $2, 'login_success', $3)")
            .bind(format!("old-event-{i}"))
            .bind(now - 120 * DAY)
            .bind(user_id)
            .execute(db)
            .await
            .unwrap();
    }
    for (i, expires) in [now - 3 * DAY, now - 2 * DAY, now + DAY]
        .into_iter()
        .enumerate()
    {
        sqlx::query(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, stamp, created_at, expires_at, used_at) \
             VALUES ($1, $2, 'reset', 's', $3, $3, NULL)",
        )
        .bind(format!("mailed-{i}"))
        .bind(user_id)
        .bind(expires)
        .execute(db)
        .await
        .unwrap();
    }
    for i in 0..2 {
        sqlx::query(
            "INSERT INTO mfa_challenges (token_hash, user_id, created_at, expires_at, failures, used_at) \
             VALUES ($1, $2, $3, $3, 0, NULL)",
        )
        .bind(format!("challenge-{i}"))
        .bind(user_id)
        .bind(now - 2 * DAY)
        .execute(db)
        .await
        .unwrap();
    }
    for (device, seen) in [("old-device", now - 100 * DAY), ("fresh-device", now - DAY)] {
        sqlx::query(
            "INSERT INTO login_devices (user_id, device, last_seen_at) VALUES ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(device)
        .bind(seen)
        .execute(db)
        .await
        .unwrap();
    }
}

fn retention() -> Retention {
    Retention {
        sessions_ms: 30 * DAY,
        events_ms: 90 * DAY,
        tokens_ms: DAY,
        devices_ms: 90 * DAY,
    }
}

const EXPECTED: [(&str, u64); 6] = [
    ("sessions", 3),
    ("refresh_tokens", 0),
    ("email_tokens", 2),
    ("mfa_challenges", 2),
    ("login_devices", 1),
    ("security_events", 4),
];

async fn count(app: &TestApp, table_query: &str) -> i64 {
    sqlx::query_scalar(table_query)
        .fetch_one(app.db())
        .await
        .unwrap()
}

#[tokio::test]
async fn rows_past_their_retention_are_pruned_in_batches_and_the_rest_kept() {
    let app = spawn_app(&[]).await;
    let user = app.register("kept").await;
    let tokens = app.login("kept").await;
    seed(&app, user["id"].as_str().unwrap()).await;
    let now = palisade::storage::now_ms();

    let dry = prune::dry_run(app.db(), &retention(), now).await.unwrap();
    assert_eq!(dry, EXPECTED);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM sessions").await,
        4,
        "a dry run deletes nothing"
    );

    // Batches of 2: every table needs more than one statement or exactly one.
    let done = prune::run(app.db(), &retention(), now, 2).await.unwrap();
    assert_eq!(done, EXPECTED);
    // The old sessions' refresh tokens went with them (cascade).
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash LIKE 'old-%'"
        )
        .await,
        0
    );
    // What is still live stays.
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM email_tokens").await, 1);
    // (The login above recorded its own device too.)
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM login_devices WHERE device = 'old-device'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM login_devices WHERE device = 'fresh-device'"
        )
        .await,
        1
    );
    assert!(
        count(&app, "SELECT COUNT(*) FROM security_events").await >= 2,
        "register and login stay"
    );
    assert_eq!(app.get_profile(&tokens.access_token).await.status(), 200);
    assert_eq!(app.refresh(&tokens.refresh_token).await.status(), 200);
    // Nothing left to do.
    let again = prune::run(app.db(), &retention(), now, 2).await.unwrap();
    assert!(again.iter().all(|(_, n)| *n == 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prune_command_counts_first_and_then_deletes() {
    let app = spawn_app(&[]).await;
    let user = app.register("operated_prune").await;
    seed(&app, user["id"].as_str().unwrap()).await;
    let out = crate::session_cache::cli(&app, &["prune", "--dry-run"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["dry_run"], true);
    assert_eq!(line["deleted"]["sessions"], 3);
    assert_eq!(line["deleted"]["security_events"], 4);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 3);

    let out = crate::session_cache::cli(&app, &["prune"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["deleted"]["sessions"], 3);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM sessions").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_a_consistent_private_copy_taken_while_the_server_runs() {
    let app = spawn_app(&[]).await;
    app.register("backed_up").await;
    app.login("backed_up").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("copy.db");
    let path = file.to_str().unwrap();
    let out = crate::session_cache::cli(&app, &["backup", path]).await;
    if crate::helpers::POSTGRES {
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the copy holds password hashes");
    }
    sqlx::any::install_default_drivers();
    let copy = sqlx::AnyPool::connect(&format!("sqlite://{path}?mode=ro"))
        .await
        .unwrap();
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username = 'backed_up'")
        .fetch_one(&copy)
        .await
        .unwrap();
    assert_eq!(users, 1);
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&copy)
        .await
        .unwrap();
    assert_eq!(check, "ok");
    // Never over an existing file.
    let again = crate::session_cache::cli(&app, &["backup", path]).await;
    assert_eq!(again.status.code(), Some(2));
}
