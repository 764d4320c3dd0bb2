//! `FailoverStore` through real outages: a killed server, a stalled one,
//! and one that accepts connections but never answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use http::Method;

use super::server::{RedisServer, inspect};
use super::{ip_key, policy};
use crate::ratelimit::failover::{FailoverStore, SharedState, fallback_for};
use crate::ratelimit::memory::MemoryStore;
use crate::ratelimit::redis::RedisStore;
use crate::ratelimit::{LimitStore, Policy, RateLimiter};
use crate::settings::RateLimitSettings;

/// The timeout the server uses by default.
const TIMEOUT: Duration = Duration::from_millis(50);
/// What a decision may cost at worst: the timeout and a scheduling margin.
const BOUND: Duration = Duration::from_millis(500);

fn failover(url: &str, p: &Arc<Policy>) -> FailoverStore {
    let redis = RedisStore::open(url).unwrap();
    let memory = Arc::new(MemoryStore::new(std::slice::from_ref(p), 1_000));
    let (store, probe) = FailoverStore::new(redis, memory, TIMEOUT);
    tokio::spawn(probe.run());
    store
}

/// Decides `n` times for `key`, each within [`BOUND`]; how many passed.
async fn allowed_of(store: &FailoverStore, p: &Policy, key: u32, n: usize) -> usize {
    let mut allowed = 0;
    for _ in 0..n {
        let started = Instant::now();
        let decision = store.check(p, ip_key(key)).await.unwrap();
        let took = started.elapsed();
        assert!(took < BOUND, "a decision took {took:?}");
        allowed += usize::from(decision.allowed);
    }
    allowed
}

async fn wait_for(store: &FailoverStore, state: SharedState, within: Duration) {
    let deadline = Instant::now() + within;
    while store.state() != state {
        assert!(
            Instant::now() < deadline,
            "still {:?} after {within:?}",
            store.state()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The log lines of this thread (the test's runtime and its tasks), as
/// text.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || logs.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn count(&self, level: &str) -> usize {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().filter(|l| l.contains(level)).count()
    }
}

#[tokio::test]
async fn a_killed_redis_is_replaced_by_memory_at_once_and_rejoined_by_itself() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let mut server = RedisServer::start();
    let port = server.port();
    let p = policy("login", "3/minute per ip", 0);
    let store = failover(&server.url(), &p);

    assert_eq!(allowed_of(&store, &p, 1, 2).await, 2);
    assert_eq!(store.state(), SharedState::Ok);
    assert_eq!(store.local_decisions(), 0);

    server.stop();
    // The local budget is this instance's own and starts full: 3 of 10.
    assert_eq!(allowed_of(&store, &p, 1, 10).await, 3);
    assert_eq!(store.state(), SharedState::Down);
    assert!(store.is_degraded());
    assert_eq!(store.local_decisions(), 10);
    // Many requests at once, on many keys: still one transition.
    let checks = (100..150).map(|n| store.check(&p, ip_key(n)));
    assert!(
        join_all(checks)
            .await
            .iter()
            .all(|d| d.as_ref().unwrap().allowed)
    );
    assert_eq!(store.fallbacks(), 1);
    assert_eq!(logs.count(" WARN "), 1, "the fall-back is logged once");

    let server = RedisServer::start_on(port);
    wait_for(&store, SharedState::Ok, Duration::from_secs(5)).await;
    assert_eq!(store.fallbacks(), 1);
    // Back on Redis (a fresh one: a full budget, kept in Redis).
    let decision = store.check(&p, ip_key(1)).await.unwrap();
    assert!(decision.allowed && decision.remaining == 2, "{decision:?}");
    assert_eq!(store.local_decisions(), 60);
    let mut c = inspect(&server).await;
    let keys: u64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
    assert_eq!(keys, 1);
    assert_eq!(logs.count(" WARN "), 1);
    assert_eq!(logs.count(" INFO "), 1, "the return is logged once");
}

#[tokio::test]
async fn a_redis_that_never_answers_costs_each_decision_at_most_the_timeout() {
    // Accepts connections, reads nothing, writes nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let p = policy("login", "3/minute per ip", 0);
    let store = failover(&url, &p);

    let started = Instant::now();
    assert_eq!(allowed_of(&store, &p, 7, 10).await, 3);
    assert!(started.elapsed() < BOUND, "{:?}", started.elapsed());
    assert_eq!(store.state(), SharedState::Down);
    // The probe's pings time out too: no flapping, no new transition.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(store.state(), SharedState::Down);
    assert_eq!(allowed_of(&store, &p, 7, 3).await, 0);
    assert_eq!(store.fallbacks(), 1);
}

#[tokio::test]
async fn a_stalled_redis_is_bypassed_and_rejoined_when_it_wakes() {
    let server = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let p = policy("api", "5/minute per ip", 0);
    let store = failover(&server.url(), &p);
    assert_eq!(allowed_of(&store, &p, 1, 1).await, 1);

    let mut c = inspect(&server).await;
    let sleeper = tokio::spawn(async move {
        let _: Result<(), _> = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(1.5)
            .query_async(&mut c)
            .await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(allowed_of(&store, &p, 1, 8).await, 5);
    assert_eq!(store.state(), SharedState::Down);
    wait_for(&store, SharedState::Ok, Duration::from_secs(5)).await;
    sleeper.await.unwrap();
    assert_eq!(store.fallbacks(), 1);
    // Redis kept the budget it had: 1 spent before the stall (and perhaps
    // the one that timed out, which Redis ran when it woke).
    let decision = store.check(&p, ip_key(1)).await.unwrap();
    assert!(decision.allowed && decision.remaining >= 2, "{decision:?}");
}

#[tokio::test]
async fn the_fallback_indexes_policies_as_the_limiter_does() {
    let settings = RateLimitSettings {
        enabled: true,
        default: vec!["a_strict".into()],
        policies: BTreeMap::from([
            ("a_strict".into(), "1/minute per ip".parse().unwrap()),
            ("b_loose".into(), "5/minute per ip".parse().unwrap()),
        ]),
        routes: BTreeMap::from([("POST /x".into(), vec!["b_loose".into()])]),
        max_keys: 1_000,
        sweep_interval: Duration::from_secs(30),
    };
    let limiter =
        RateLimiter::from_settings(&settings, &Default::default(), &["POST /x".to_owned()])
            .unwrap();
    let fallback = fallback_for(&settings);
    for (route, budget) in [(Some("/x"), 5), (None, 1)] {
        let policies = limiter.policies_for(&Method::POST, route);
        assert_eq!(policies.len(), 1);
        let mut allowed = 0;
        for _ in 0..8 {
            let d = fallback.check(&policies[0], ip_key(3)).await.unwrap();
            allowed += usize::from(d.allowed);
        }
        assert_eq!(allowed, budget, "{route:?}");
    }
}
