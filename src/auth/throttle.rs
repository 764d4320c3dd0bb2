//! Back-off for failed logins, per account.
//!
//! Keyed by the account (its id when the submitted name resolves to one,
//! so its username and email share one budget; the normalised name
//! otherwise, so unknown names behave exactly alike and the back-off
//! reveals nothing). Every attempt is **reserved** as a failure when it is
//! let through, atomically with the check, before the password is hashed:
//! attempts in flight count, so a burst of concurrent guesses gets no more
//! checks than sequential ones. A success clears the count. `free`
//! attempts may follow one another without a wait; from then on each
//! failure doubles the wait, from one second up to `max_delay`, and an hour
//! without failures forgets the account: never a permanent lockout. With
//! the defaults (5 free, 15 minutes at most) an account can see about 20
//! failed attempts an hour, well inside ASVS 5.0's ceiling of 100.
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

    /// `Err(wait)` while the account is backing off; otherwise the attempt
    /// is recorded as a failure (until [`LoginThrottle::success`] clears
    /// it) and may go ahead.
    pub fn attempt(&self, account: &str, now: Instant) -> Result<(), Duration> {
        let (key, mut map) = self.shard(account);
        if let Some(e) = map.get(&key)
            && e.blocked_until > now
        {
            return Err(e.blocked_until - now);
        }
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
        entry.blocked_until = now + self.delay(entry.failures);
        Ok(())
    }

    /// Clears the account name after a successful login.
    pub fn success(&self, account: &str) {
        let (key, mut map) = self.shard(account);
        map.remove(&key);
    }

    /// The wait after `failures` attempts: none before the `free`-th, then
    /// 1 s doubling.
    fn delay(&self, failures: u32) -> Duration {
        if failures < self.free {
            return Duration::ZERO;
        }
        let exponent = (failures - self.free).min(30);
        Duration::from_secs(1u64 << exponent).min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(5, Duration::from_secs(900), 10_000)
    }

    /// The attempts let through back to back, and the wait after them.
    fn burst(t: &LoginThrottle, name: &str, now: Instant) -> (usize, Duration) {
        let mut passed = 0;
        for _ in 0..60 {
            match t.attempt(name, now) {
                Ok(()) => passed += 1,
                Err(wait) => return (passed, wait),
            }
        }
        (passed, Duration::ZERO)
    }

    #[test]
    fn free_attempts_then_a_wait_that_doubles() {
        let t = throttle();
        let now = Instant::now();
        assert_eq!(burst(&t, "Ada", now), (5, Duration::from_secs(1)));
        assert!(t.attempt("ada", now).is_err(), "names are case-insensitive");
        let later = now + Duration::from_secs(1);
        assert_eq!(burst(&t, "ada", later), (1, Duration::from_secs(2)));
        let later = later + Duration::from_secs(2);
        assert_eq!(burst(&t, "ada", later), (1, Duration::from_secs(4)));
    }

    #[test]
    fn a_success_clears_the_count() {
        let t = throttle();
        let now = Instant::now();
        burst(&t, "ada", now);
        t.success("ada");
        assert_eq!(burst(&t, "ada", now).0, 5);
    }

    #[test]
    fn the_wait_is_capped_and_never_permanent() {
        let t = throttle();
        let mut now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..20 {
            let (_, wait) = burst(&t, "ada", now);
            waits.push(wait);
            now += wait;
        }
        assert_eq!(waits.last(), Some(&Duration::from_secs(900)));
        assert!(t.attempt("ada", now).is_ok());
    }

    #[test]
    fn an_attacker_gets_fewer_than_100_attempts_an_hour() {
        let t = throttle();
        let start = Instant::now();
        let mut now = start;
        let mut attempts = 0;
        while now < start + FORGET_AFTER {
            match t.attempt("ada", now) {
                Ok(()) => attempts += 1,
                Err(wait) => now += wait,
            }
        }
        assert!(attempts < 100, "{attempts} attempts in an hour");
    }

    #[test]
    fn memory_is_bounded() {
        let t = LoginThrottle::new(5, Duration::from_secs(900), 1_000);
        let now = Instant::now();
        for n in 0..20_000 {
            let _ = t.attempt(&format!("user{n}"), now);
        }
        let total: usize = t.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= 1_000, "{total}");
    }
}
