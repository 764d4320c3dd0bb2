//! `RedisStore` against real servers: the in-process store's decisions,
//! one budget for many instances, bounded keys that name no one.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;

use super::server::{RedisServer, inspect};
use super::{ip_key, policy};
use crate::ratelimit::memory::MemoryStore;
use crate::ratelimit::redis::{KEY_PREFIX, RedisStore};
use crate::ratelimit::{Decision, LimitKey, LimitStore};

fn close(a: Duration, b: Duration, tolerance: Duration) -> bool {
    a.abs_diff(b) <= tolerance
}

#[tokio::test]
async fn a_burst_of_count_passes_then_the_next_is_refused_as_in_memory() {
    let server = RedisServer::start();
    for spec in ["5/minute per ip", "7/minute per ip", "1/hour per ip"] {
        let p = policy("burst", spec, 0);
        let count = p.spec.count.get();
        let redis = RedisStore::open(&server.url()).unwrap();
        let memory = MemoryStore::new(std::slice::from_ref(&p), 1_000);
        let key = ip_key(u32::from(Ipv4Addr::new(198, 51, 100, 7)) + count);
        let mut shared: Vec<Decision> = Vec::new();
        let mut local: Vec<Decision> = Vec::new();
        for _ in 0..count + 2 {
            local.push(memory.check(&p, key).await.unwrap());
            shared.push(redis.check(&p, key).await.unwrap());
        }
        let allowed = shared.iter().filter(|d| d.allowed).count();
        assert_eq!(allowed, count as usize, "{spec}: {shared:?}");
        assert!(shared[..count as usize].iter().all(|d| d.allowed));
        for (n, (r, m)) in shared.iter().zip(&local).enumerate() {
            assert_eq!(r.allowed, m.allowed, "{spec} #{n}: {r:?} vs {m:?}");
            assert_eq!(r.remaining, m.remaining, "{spec} #{n}: {r:?} vs {m:?}");
            assert!(
                close(r.reset, m.reset, Duration::from_millis(100)),
                "{spec} #{n}: {r:?} vs {m:?}"
            );
        }
        let emission = p.spec.period / count;
        let refused = shared[count as usize];
        assert!(!refused.allowed && refused.remaining == 0);
        assert!(
            refused.reset <= emission && refused.reset > emission - Duration::from_secs(1),
            "{spec}: a retry passes one emission interval after the burst: {refused:?}"
        );
        assert_eq!(shared[0].remaining, count - 1);
        assert!(close(shared[0].reset, emission, Duration::from_millis(1)));
    }
}

#[tokio::test]
async fn the_bucket_refills_one_request_per_emission_interval() {
    let server = RedisServer::start();
    let p = policy("fast", "10/second per ip", 0);
    let redis = RedisStore::open(&server.url()).unwrap();
    for _ in 0..10 {
        assert!(redis.check(&p, ip_key(1)).await.unwrap().allowed);
    }
    let refused = redis.check(&p, ip_key(1)).await.unwrap();
    assert!(!refused.allowed && refused.reset <= Duration::from_millis(100));
    tokio::time::sleep(refused.reset + Duration::from_millis(10)).await;
    let again = redis.check(&p, ip_key(1)).await.unwrap();
    assert!(again.allowed, "{again:?}");
    assert_eq!(again.remaining, 0);
    assert!(!redis.check(&p, ip_key(1)).await.unwrap().allowed);
    assert!(
        redis.check(&p, ip_key(2)).await.unwrap().allowed,
        "another key has its own bucket"
    );
}

#[tokio::test]
async fn two_instances_share_one_budget() {
    let server = RedisServer::start();
    let p = policy("shared", "10/minute per ip", 0);
    // Two stores, two connections: what two server instances would have.
    let a = RedisStore::open(&server.url()).unwrap();
    let b = RedisStore::open(&server.url()).unwrap();
    let mut allowed = 0;
    let mut refused_by = [0; 2];
    for n in 0..20 {
        let (store, which) = if n % 2 == 0 { (&a, 0) } else { (&b, 1) };
        let decision = store.check(&p, ip_key(9)).await.unwrap();
        if decision.allowed {
            allowed += 1;
        } else {
            refused_by[which] += 1;
        }
    }
    assert_eq!(allowed, 10);
    assert_eq!(refused_by, [5, 5], "both instances see the spent budget");
}

#[tokio::test]
async fn keys_expire_at_their_horizon_and_name_no_one() {
    let server = RedisServer::start();
    let by_user = policy("api", "5/minute per ip+user", 0);
    let by_account = policy("login", "3/hour per account", 1);
    let redis = RedisStore::open(&server.url())
        .unwrap()
        .with_key_secret(b"a shared test secret");
    let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 77));
    let user = "0196f3a2-7c1d-7e55-9a1b-5d1f0c2e4b3a";
    let account = "alice@example.com";
    let user_key = LimitKey {
        ip: Some(ip),
        user: Some(user),
        account: None,
    };
    let account_key = LimitKey {
        account: Some(account),
        ..LimitKey::default()
    };
    for _ in 0..2 {
        redis.check(&by_user, user_key).await.unwrap();
    }
    redis.check(&by_account, account_key).await.unwrap();

    let mut c = inspect(&server).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let shape = regex::Regex::new(r"^palisade:rl:(api|login):[0-9a-f]{32}$").unwrap();
    for key in &keys {
        assert!(shape.is_match(key), "{key}");
        let value: String = c.get(key).await.unwrap();
        for secret in [&ip.to_string(), user, account, "alice", "203.0.113"] {
            assert!(
                !key.contains(secret) && !value.contains(secret),
                "{key} = {value}"
            );
        }
        assert!(value.bytes().all(|b| b.is_ascii_digit()), "{value}");
    }
    // The horizon: full again one emission interval per request spent.
    let api_key = redis.redis_key(&by_user, &user_key);
    let ttl: i64 = c.pttl(&api_key).await.unwrap();
    assert!(ttl > 23_000 && ttl <= 24_000, "2 × 12 s: {ttl}");
    let login_key = redis.redis_key(&by_account, &account_key);
    let ttl: i64 = c.pttl(&login_key).await.unwrap();
    assert!(ttl > 1_199_000 && ttl <= 1_200_000, "1 × 20 min: {ttl}");

    // And they do go.
    let fast = policy("fast", "20/second per ip", 2);
    redis.check(&fast, ip_key(3)).await.unwrap();
    let key = redis.redis_key(&fast, &ip_key(3));
    let ttl: i64 = c.pttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= 50, "{ttl}");
    tokio::time::sleep(Duration::from_millis(120)).await;
    let exists: bool = c.exists(&key).await.unwrap();
    assert!(!exists, "an expired bucket leaves no key");
}

#[test]
fn opening_outside_a_runtime_is_an_error_not_a_panic() {
    assert!(RedisStore::open("redis://127.0.0.1:1").is_err());
    assert!(RedisStore::open("redis://127.0.0.1:1,redis://127.0.0.1:2").is_err());
}

#[tokio::test]
async fn digests_depend_on_the_key_secret_and_on_every_part_of_the_key() {
    let p = policy("api", "5/minute per ip+user", 0);
    // No I/O: the connection is lazy.
    let plain = RedisStore::open("redis://127.0.0.1:1").unwrap();
    let keyed = RedisStore::open("redis://127.0.0.1:1")
        .unwrap()
        .with_key_secret(b"one");
    let keyed_again = RedisStore::open("redis://127.0.0.1:1")
        .unwrap()
        .with_key_secret(b"one");
    let other = RedisStore::open("redis://127.0.0.1:1")
        .unwrap()
        .with_key_secret(b"two");
    let k = ip_key(1);
    assert_eq!(keyed.redis_key(&p, &k), keyed_again.redis_key(&p, &k));
    assert_ne!(keyed.redis_key(&p, &k), plain.redis_key(&p, &k));
    assert_ne!(keyed.redis_key(&p, &k), other.redis_key(&p, &k));
    assert!(
        keyed
            .redis_key(&p, &k)
            .starts_with(&format!("{KEY_PREFIX}api:"))
    );
    // The same text in another part is another key.
    let as_user = LimitKey {
        user: Some("ab"),
        ..LimitKey::default()
    };
    let as_account = LimitKey {
        account: Some("ab"),
        ..LimitKey::default()
    };
    let split = LimitKey {
        user: Some("a"),
        account: Some("b"),
        ..LimitKey::default()
    };
    let digests = [as_user, as_account, split].map(|k| keyed.redis_key(&p, &k));
    assert_ne!(digests[0], digests[1]);
    assert_ne!(digests[0], digests[2]);
    assert_ne!(digests[1], digests[2]);
}

#[tokio::test]
async fn a_server_that_forgot_the_script_is_sent_it_again() {
    let server = RedisServer::start();
    let p = policy("t", "3/minute per ip", 0);
    let redis = RedisStore::open(&server.url()).unwrap();
    assert_eq!(redis.check(&p, ip_key(1)).await.unwrap().remaining, 2);
    let mut c = inspect(&server).await;
    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(redis.check(&p, ip_key(1)).await.unwrap().remaining, 1);
}

#[tokio::test]
async fn connect_checks_that_redis_answers() {
    let server = RedisServer::start();
    let store = RedisStore::connect(&server.url(), Duration::from_secs(2)).await;
    assert!(store.is_ok());
    let url = server.url();
    drop(server);
    let started = Instant::now();
    let refused = RedisStore::connect(&url, Duration::from_millis(300)).await;
    assert!(refused.is_err());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(RedisStore::open("http://not-redis").is_err());
}
