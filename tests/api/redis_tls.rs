//! `rediss://` to a Redis that has a certificate from a private CA (as
//! managed Redis services often do): with `redis.ca_file` naming the CA the
//! instances verify the server and share their limits (and, on PostgreSQL,
//! their session invalidations) through it; trusting only the system's
//! roots, an instance refuses the server and falls back to its own limits.
//! The Redis is the test's own, with TLS on a second port.

use crate::helpers::{TEST_SECRET, TestApp, free_port, spawn_app, spawn_cluster};
use crate::postgres_tls::certificates;
use crate::redis_server::RedisServer;

async fn readiness(app: &TestApp) -> serde_json::Value {
    app.get("/health/ready").await.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_is_verified_and_shared() {
    let dir = tempfile::tempdir().unwrap();
    let ca = certificates(dir.path(), "redis");
    let ca = ca.to_str().unwrap();
    let cert = dir.path().join("server.pem");
    let key = dir.path().join("server.key");
    let tls_port = free_port().to_string();
    let _redis = RedisServer::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        cert.to_str().unwrap(),
        "--tls-key-file",
        key.to_str().unwrap(),
        "--tls-ca-cert-file",
        ca,
        "--tls-auth-clients",
        "no",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let policies = "data=3/minute per ip; register=1000/minute per ip; login=1000/minute per ip";
    let apps = spawn_cluster(
        2,
        &[
            ("REDIS_URL", url.as_str()),
            ("PALISADE_REDIS_CA_FILE", ca),
            ("PALISADE_RATE_LIMIT_POLICIES", policies),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        statuses.push(apps[i % 2].get("/api/data").await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429], "one budget over TLS");
    assert_eq!(readiness(&apps[1]).await["checks"]["redis"], "ok");
    // The session caches' channel works over TLS too.
    crate::session_cache::until_usable(&apps).await;

    // The system's roots do not know the private CA: the server is refused
    // (no unverified fallback), and the instance counts limits alone.
    let unverified = spawn_app(&[
        ("REDIS_URL", url.as_str()),
        ("PALISADE_JWT_SECRET", TEST_SECRET),
        ("PALISADE_RATE_LIMIT_POLICIES", policies),
    ])
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(unverified.get("/api/data").await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429], "local limits, no 5xx");
    let ready = readiness(&unverified).await;
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["checks"]["redis"], "down", "{ready}");
}

#[tokio::test]
async fn an_unreadable_redis_ca_file_stops_start_up() {
    let (settings, _scratch) = crate::helpers::settings(&[
        ("REDIS_URL", "rediss://127.0.0.1:1"),
        ("PALISADE_JWT_SECRET", TEST_SECRET),
        ("PALISADE_REDIS_CA_FILE", "/nonexistent/ca.pem"),
    ]);
    let error = palisade::startup::Application::build(settings)
        .await
        .expect_err("start-up must fail");
    assert!(format!("{error:#}").contains("redis.ca_file"), "{error:#}");
}
