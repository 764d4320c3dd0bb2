//! Faults in a dependency: the database goes away under a write load and
//! comes back. Every request answers within a bounded time (a 503 problem
//! or a success), no acknowledged write is lost, and the server recovers
//! without a restart. The database is cut with a TCP proxy in front of the
//! shared PostgreSQL server, never by stopping the server itself.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::database::{POSTGRES, TEST_SECRET, TestDatabase, server_addr};
use crate::helpers::{PASSWORD, spawn_app};
use crate::proxy::Proxy;

/// The longest a request may take while the database is gone: the pool's
/// acquire timeout (set to 2 s below) plus a margin for the machine.
const BOUND: Duration = Duration::from_secs(4);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_under_writes_gives_bounded_503s_loses_no_acknowledged_write_and_recovers() {
    if !POSTGRES {
        // The embedded SQLite file has no connection to lose; this is the
        // PostgreSQL run's test (binary api_postgres).
        return;
    }
    let db = TestDatabase::create();
    let proxy = Arc::new(Proxy::start(server_addr()).await);
    let url = db.url_through(proxy.addr);
    let app = Arc::new(
        spawn_app(&[
            ("DATABASE_URL", url.as_str()),
            ("PALISADE_JWT_SECRET", TEST_SECRET),
            (
                "PALISADE_RATE_LIMIT_POLICIES",
                "register=1000000/minute per ip",
            ),
        ])
        .await,
    );
    let created = Arc::new(Mutex::new(Vec::<String>::new()));
    let statuses = Arc::new(Mutex::new(Vec::<u16>::new()));
    let start = Instant::now();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (app, created, statuses) = (
            Arc::clone(&app),
            Arc::clone(&created),
            Arc::clone(&statuses),
        );
        writers.push(tokio::spawn(async move {
            let mut n = 0;
            while start.elapsed() < Duration::from_secs(7) {
                let username = format!("w{w}_{n}");
                n += 1;
                let sent = Instant::now();
                let response = app
                    .post_json(
                        "/auth/register",
                        &serde_json::json!({
                            "email": format!("{username}@example.org"),
                            "username": username,
                            "name": "Writer",
                            "password": PASSWORD,
                        }),
                    )
                    .await;
                let took = sent.elapsed();
                let status = response.status().as_u16();
                assert!(took < BOUND, "{username}: {status} after {took:?}");
                match status {
                    201 => created.lock().await.push(username),
                    503 => {
                        let ct = response.headers()["content-type"]
                            .to_str()
                            .unwrap()
                            .to_owned();
                        assert_eq!(ct, "application/problem+json");
                        let body = response.text().await.unwrap();
                        assert!(!body.to_lowercase().contains("sqlx"), "{body}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => panic!("{username}: unexpected {other}"),
                }
                statuses.lock().await.push(status);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    proxy.cut().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ready = app.get("/health/ready").await.status();
    proxy.restore();
    for writer in writers {
        writer.await.unwrap();
    }
    let statuses = statuses.lock().await.clone();
    assert_eq!(ready, 503, "readiness while the database is gone");
    assert!(
        statuses.contains(&503),
        "the cut was not felt: {statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&201),
        "no recovery without a restart: {statuses:?}"
    );
    // Every acknowledged registration is there, read through a connection
    // of our own, not through the proxy.
    let pool = sqlx::PgPool::connect(&db.url()).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT username FROM users")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    let created = created.lock().await.clone();
    let missing: Vec<&String> = created.iter().filter(|u| !stored.contains(u)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(
        created.len() > 4,
        "too few writes to mean anything: {created:?}"
    );
}

#[tokio::test]
async fn a_statement_that_outlives_the_statement_timeout_ends_as_a_503() {
    if !POSTGRES {
        // SQLite has no statement timeout: the PostgreSQL run's test.
        return;
    }
    let app = spawn_app(&[("PALISADE_DATABASE_STATEMENT_TIMEOUT", "200ms")]).await;
    // The setting reaches every pooled connection.
    let shown: String = sqlx::query_scalar("SELECT current_setting('statement_timeout')")
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(shown, "200ms");
    let started = Instant::now();
    let err = sqlx::query("SELECT pg_sleep(5)")
        .execute(app.db())
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(palisade::ApiError::from(err).status(), 503);
}
