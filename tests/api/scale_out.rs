//! Many instances on one database and one Redis: every rate limit is
//! shared, and losing Redis degrades each instance to its own limits (no
//! 5xx, never no limits) until Redis answers again. Each test runs a Redis
//! of its own on a free port, never the shared one.

use std::time::{Duration, Instant};

use crate::helpers::{TestApp, spawn_cluster};
use crate::redis_server::RedisServer;

async fn get_data(app: &TestApp) -> u16 {
    app.get("/api/data").await.status().as_u16()
}

async fn readiness(app: &TestApp) -> serde_json::Value {
    let response = app.get("/health/ready").await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_holds_across_three_instances_sharing_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    let apps = spawn_cluster(3, &[("REDIS_URL", url.as_str())]).await;
    // 10/minute per IP: ten requests spread over the three instances pass,
    // the eleventh, wherever it lands, is refused.
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(get_data(&apps[i % 3]).await);
    }
    assert_eq!(statuses, [200; 10]);
    for app in &apps {
        let response = app.get("/api/data").await;
        assert_eq!(response.status(), 429);
        assert!(response.headers().contains_key("retry-after"));
    }
    let ready = readiness(&apps[0]).await;
    assert_eq!(ready["status"], "ok");
    assert_eq!(ready["checks"]["redis"], "ok");
    assert_eq!(ready["checks"]["database"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_limit_holds_across_instances() {
    let redis = RedisServer::start();
    let url = redis.url();
    let apps = spawn_cluster(
        3,
        &[
            ("REDIS_URL", url.as_str()),
            ("PALISADE_RATE_LIMIT_POLICIES", "login=5/minute per ip"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let response = apps[i % 3]
            .token_request("nobody", "wrong password here")
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [400, 400, 400, 400, 400, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_redis_degrades_to_local_limits_without_errors_and_sharing_comes_back() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    let url = redis.url();
    let apps = spawn_cluster(
        2,
        &[
            ("REDIS_URL", url.as_str()),
            ("PALISADE_RATE_LIMIT_POLICIES", "data=4/minute per ip"),
        ],
    )
    .await;
    // Shared: 4 over both instances.
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(get_data(&apps[i % 2]).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);

    redis.stop();
    // Each instance now counts alone: never a 5xx, never unlimited. Every
    // decision is bounded by the Redis timeout.
    for app in &apps {
        let mut local = Vec::new();
        for _ in 0..6 {
            let started = Instant::now();
            local.push(get_data(app).await);
            assert!(started.elapsed() < Duration::from_secs(1));
        }
        assert_eq!(local, [200, 200, 200, 200, 429, 429], "local limits");
        let ready = readiness(app).await;
        assert_eq!(ready["status"], "degraded");
        assert_eq!(ready["checks"]["redis"], "down");
    }

    // Redis returns (empty): the instances go back to it by themselves.
    let _redis = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = readiness(&apps[0]).await;
        if ready["checks"]["redis"] == "ok" {
            break;
        }
        assert!(Instant::now() < deadline, "never back on Redis: {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    while readiness(&apps[1]).await["checks"]["redis"] != "ok" {
        assert!(Instant::now() < deadline, "instance 2 never back on Redis");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Shared again: a fresh budget of 4 over both.
    let mut statuses = Vec::new();
    for i in 0..5 {
        statuses.push(get_data(&apps[i % 2]).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_login_back_off_of_an_account_is_shared_by_all_instances() {
    let redis = RedisServer::start();
    let url = redis.url();
    let apps = spawn_cluster(3, &[("REDIS_URL", url.as_str())]).await;
    apps[0].register("ada_l").await;
    // Five free attempts spread over three instances; then, on every
    // instance, the right password is not even checked.
    for i in 0..5 {
        let response = apps[i % 3]
            .token_request("ada_l", "not the password at all")
            .await;
        assert_eq!(response.status(), 400, "failure {i}");
    }
    for app in &apps {
        let blocked = app.token_request("ADA_L", crate::helpers::PASSWORD).await;
        assert_eq!(blocked.status(), 429);
        assert!(blocked.headers().contains_key("retry-after"));
    }
    // In Redis, the name is a keyed digest that expires.
    let mut redis_cli = std::process::Command::new("redis-cli");
    let keys = redis_cli
        .args([
            "-p",
            &redis.port().to_string(),
            "--scan",
            "--pattern",
            "palisade:bo:*",
        ])
        .output()
        .unwrap();
    let keys = String::from_utf8_lossy(&keys.stdout).to_string();
    assert_eq!(keys.lines().count(), 1, "{keys}");
    // (Not "ada": that is three hex digits, which a digest holds about
    // once in 66 runs.)
    assert!(!keys.to_lowercase().contains("ada_l"), "{keys}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_on_a_redis_cluster_share_the_limit_and_the_session_invalidations() {
    let (_cluster, nodes) = crate::redis_server::start_cluster().await;
    let url = nodes.join(",");
    let apps = spawn_cluster(
        3,
        &[
            ("REDIS_URL", url.as_str()),
            (
                "PALISADE_RATE_LIMIT_POLICIES",
                "data=10/minute per ip; register=1000/minute per ip; login=1000/minute per ip",
            ),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(get_data(&apps[i % 3]).await);
    }
    assert_eq!(statuses, [200; 10]);
    for app in &apps {
        assert_eq!(get_data(app).await, 429);
    }
    let ready = readiness(&apps[1]).await;
    assert_eq!(ready["checks"]["redis"], "ok");

    // The session cache's invalidations travel through the cluster too.
    crate::session_cache::until_usable(&apps).await;
    apps[0].register("clustered").await;
    let t = apps[0].login("clustered").await;
    crate::session_cache::cache_everywhere(&apps, &t.access_token).await;
    let r = apps[2]
        .client
        .post(apps[2].url("/auth/logout"))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    crate::session_cache::assert_refused_everywhere(&apps, &t.access_token, "logout").await;
}
