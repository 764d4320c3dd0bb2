//! Back-off for failed logins, per account name.
//!
//! Keyed by the name as submitted (lower-cased), whether or not such an
//! account exists, so the back-off itself reveals nothing. The first
//! `free` consecutive failures cost nothing; each later one doubles the
//! wait, from one second up to `max_delay`. A success clears the count,
//! and an hour without failures forgets it: the wait never becomes a
//! permanent lockout. With the defaults (5 free, 15 minutes at most) an
//! account can see at most about 20 failed attempts an hour, well inside
//! ASVS 5.0's ceiling of 100.
//!
//! This table is per process; [`super::backoff::Backoff`] puts it behind
//! a back-off shared through Redis when one is configured.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

const SHARDS: usize = 16;
/// A name without failures for this long starts afresh.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: Instant,
    blocked_until: Instant,
}

/// The back-off table, bounded to `max_keys` names.
#[derive(Debug)]
pub struct LoginThrottle {
    shards: Vec<Mutex<HashMap<u64, Entry>>>,
    hasher: RandomState,
    shard_cap: usize,
    free: u32,
    max_delay: Duration,
}

impl LoginThrottle {
    pub fn new(free: u32, max_delay: Duration, max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            shard_cap: (max_keys / SHARDS).max(16),
            free,
            max_delay,
        }
    }

    fn shard(&self, account: &str) -> (u64, std::sync::MutexGuard<'_, HashMap<u64, Entry>>) {
        let key = self.hasher.hash_one(account.to_lowercase());
        let shard = &self.shards[(key as usize) % SHARDS];
        (key, shard.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// `Err(wait)` while the account name is backing off.
    pub fn check(&self, account: &str, now: Instant) -> Result<(), Duration> {
        let (key, map) = self.shard(account);
        match map.get(&key) {
            Some(e) if e.blocked_until > now => Err(e.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Records a failure and returns the wait it imposes.
    pub fn failure(&self, account: &str, now: Instant) -> Duration {
        let (key, mut map) = self.shard(account);
        if !map.contains_key(&key) && map.len() >= self.shard_cap {
            // Forget the names whose last failure is oldest.
            crate::ratelimit::bounded::evict_tenth(&mut map, |e| e.last);
        }
        let entry = map.entry(key).or_insert(Entry {
            failures: 0,
            last: now,
            blocked_until: now,
        });
        if now.duration_since(entry.last) > FORGET_AFTER {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        let delay = self.delay(entry.failures);
        entry.blocked_until = now + delay;
        delay
    }

    /// Clears the account name after a successful login.
    pub fn success(&self, account: &str) {
        let (key, mut map) = self.shard(account);
        map.remove(&key);
    }

    fn delay(&self, failures: u32) -> Duration {
        if failures <= self.free {
            return Duration::ZERO;
        }
        let exponent = (failures - self.free - 1).min(30);
        Duration::from_secs(1u64 << exponent).min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(5, Duration::from_secs(900), 10_000)
    }

    #[test]
    fn the_first_failures_are_free_then_the_wait_doubles() {
        let t = throttle();
        let now = Instant::now();
        let waits: Vec<u64> = (0..8).map(|_| t.failure("Ada", now).as_secs()).collect();
        assert_eq!(waits, [0, 0, 0, 0, 0, 1, 2, 4]);
        assert!(t.check("ada", now).is_err(), "names are case-insensitive");
        assert!(t.check("ada", now + Duration::from_secs(9)).is_ok());
    }

    #[test]
    fn a_success_clears_the_count() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..7 {
            t.failure("ada", now);
        }
        t.success("ada");
        assert!(t.check("ada", now).is_ok());
        assert_eq!(t.failure("ada", now), Duration::ZERO);
    }

    #[test]
    fn the_wait_is_capped_and_never_permanent() {
        let t = throttle();
        let now = Instant::now();
        for _ in 0..50 {
            t.failure("ada", now);
        }
        assert_eq!(t.failure("ada", now), Duration::from_secs(900));
        assert!(t.check("ada", now + Duration::from_secs(901)).is_ok());
    }

    #[test]
    fn an_attacker_gets_fewer_than_100_failures_an_hour() {
        let t = throttle();
        let start = Instant::now();
        let mut now = start;
        let mut attempts = 0;
        while now < start + FORGET_AFTER {
            match t.check("ada", now) {
                Ok(()) => {
                    t.failure("ada", now);
                    attempts += 1;
                }
                Err(wait) => now += wait,
            }
        }
        assert!(attempts < 100, "{attempts} failures in an hour");
    }

    #[test]
    fn memory_is_bounded() {
        let t = LoginThrottle::new(5, Duration::from_secs(900), 1_000);
        let now = Instant::now();
        for n in 0..20_000 {
            t.failure(&format!("user{n}"), now);
        }
        let total: usize = t.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= 1_000, "{total}");
    }
}
