//! The cache's own rules, without a channel (`Local` with the listening
//! flag set by hand stands for a live channel).

use std::time::Duration;

use super::*;
use crate::domain::Role;

fn user(id: &str) -> User {
    User {
        id: id.to_owned(),
        email: format!("{id}@example.com"),
        username: id.to_owned(),
        name: id.to_owned(),
        role: Role::User,
        disabled: false,
        email_verified: false,
        password_changed_at: 0,
        created_at: 0,
        updated_at: 0,
    }
}

fn live(ttl: Duration) -> SessionCache {
    let cache = SessionCache::new(Channel::Local, ttl, 100, None, None);
    cache.set_listening(true);
    cache
}

const FAR: i64 = i64::MAX / 2;

#[test]
fn a_stored_session_is_found_until_its_user_is_evicted() {
    let cache = live(Duration::from_secs(10));
    let now = now_ms();
    let t = cache.ticket("u1");
    cache.store(t, &user("u1"), "s1", FAR, now);
    assert_eq!(
        cache.lookup("s1", "u1", now).map(|u| u.id),
        Some("u1".into())
    );
    assert!(cache.lookup("s2", "u1", now).is_none(), "another session");
    assert!(cache.lookup("s1", "u2", now).is_none(), "another user");
    cache.evict_local("u1");
    assert!(cache.lookup("s1", "u1", now).is_none());
}

#[test]
fn a_store_overtaken_by_an_invalidation_does_not_stay() {
    let cache = live(Duration::from_secs(10));
    let now = now_ms();
    let t = cache.ticket("u1");
    // The read ran, then a logout committed and invalidated, then the
    // reader stores what it read before the logout.
    cache.evict_local("u1");
    cache.store(t, &user("u1"), "s1", FAR, now);
    assert!(cache.lookup("s1", "u1", now).is_none());
    // A flush overtakes the same way.
    let t = cache.ticket("u1");
    cache.flush();
    cache.store(t, &user("u1"), "s1", FAR, now);
    assert!(cache.lookup("s1", "u1", now).is_none());
    // A fresh ticket stores.
    let t = cache.ticket("u1");
    cache.store(t, &user("u1"), "s1", FAR, now);
    assert!(cache.lookup("s1", "u1", now).is_some());
}

#[test]
fn entries_expire_with_the_ttl_and_the_session() {
    let cache = live(Duration::from_millis(1_000));
    let now = now_ms();
    let t = cache.ticket("u1");
    cache.store(t, &user("u1"), "s1", now + 5_000, now);
    assert!(cache.lookup("s1", "u1", now + 999).is_some());
    assert!(cache.lookup("s1", "u1", now + 1_000).is_none(), "ttl");
    let t = cache.ticket("u1");
    cache.store(t, &user("u1"), "s2", now + 500, now);
    assert!(cache.lookup("s2", "u1", now + 499).is_some());
    assert!(cache.lookup("s2", "u1", now + 500).is_none(), "session end");
}

#[test]
fn several_sessions_of_one_user_are_kept_up_to_the_cap() {
    let cache = live(Duration::from_secs(10));
    let now = now_ms();
    for i in 0..10 {
        let t = cache.ticket("u1");
        cache.store(t, &user("u1"), &format!("s{i}"), FAR, now);
    }
    assert!(cache.lookup("s9", "u1", now).is_some());
    assert!(cache.lookup("s2", "u1", now).is_some());
    assert!(cache.lookup("s0", "u1", now).is_none(), "oldest dropped");
}

#[test]
fn a_cache_without_a_live_channel_is_bypassed() {
    let now = now_ms();
    for cache in [
        SessionCache::off(),
        SessionCache::new(Channel::Local, Duration::from_secs(10), 100, None, None),
        SessionCache::new(Channel::Redis, Duration::from_secs(10), 100, None, None),
        SessionCache::new(Channel::Local, Duration::ZERO, 100, None, None),
    ] {
        let t = cache.ticket("u1");
        cache.store(t, &user("u1"), "s1", FAR, now);
        cache.set_listening(true);
        cache.heartbeat(now_ms());
        if cache.channel() == Channel::Off {
            assert!(!cache.usable());
        }
        assert!(
            cache.lookup("s1", "u1", now).is_none(),
            "{cache:?} stored while bypassed"
        );
    }
}

#[test]
fn a_silent_redis_channel_turns_the_cache_off_and_flushes_it_on_return() {
    let cache = SessionCache::new(Channel::Redis, Duration::from_secs(60), 100, None, None);
    let now = now_ms();
    assert!(!cache.usable(), "no heartbeat yet");
    cache.heartbeat(now);
    assert!(cache.usable());
    let t = cache.ticket("u1");
    cache.store(t, &user("u1"), "s1", FAR, now);
    assert!(cache.lookup("s1", "u1", now).is_some());
    // The connection breaks: bypassed at once.
    cache.channel_lost();
    assert!(!cache.usable());
    assert!(cache.lookup("s1", "u1", now).is_none());
    // Back: flushed, so nothing from before is trusted.
    cache.heartbeat(now_ms());
    assert!(cache.usable());
    assert!(cache.lookup("s1", "u1", now).is_none());
    // A heartbeat that comes after a silence flushes too.
    let t = cache.ticket("u1");
    cache.store(t, &user("u1"), "s1", FAR, now);
    cache.heartbeat(now_ms() + HEARTBEAT_STALE_MS + 10);
    assert!(cache.lookup("s1", "u1", now).is_none());
}

#[test]
fn stripes_spread_users() {
    let used: std::collections::HashSet<usize> = (0..1_000)
        .map(|_| stripe_of(&uuid::Uuid::new_v4().to_string()))
        .collect();
    assert!(used.len() > STRIPES / 2, "{} stripes used", used.len());
}
