//! The in-process limiter store: governor's GCRA over a bounded map.
//!
//! Keys are reduced to 128-bit keyed hashes (SipHash with per-process random
//! keys, so an attacker can neither predict nor collide them), which makes
//! every entry the same small size whatever the key. Each policy gets its own
//! map, split into shards behind short mutexes. A map never holds more than
//! `max_keys` entries: at the cap, a shard drops the tenth of its keys whose
//! buckets are closest to full (the stale ones first, since a key whose
//! bucket has refilled is exactly like an absent key). A periodic sweep drops
//! every stale key and gives the memory back.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::{Decision, LimitKey, LimitStore, Policy, StoreError};

const SHARDS: usize = 64;

/// The keys are already uniformly random hashes: hash them by identity.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type Map = HashMap<u128, Nanos, BuildHasherDefault<IdentityHasher>>;

/// A governor state store with a hard cap on its number of keys.
pub struct BoundedStore {
    shards: Box<[Mutex<Map>]>,
    shard_cap: usize,
}

impl std::fmt::Debug for BoundedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedStore")
            .field("shard_cap", &self.shard_cap)
            .finish_non_exhaustive()
    }
}

impl BoundedStore {
    fn new(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Map::default())).collect(),
            shard_cap: (max_keys / SHARDS).max(16),
        }
    }

    fn shard(&self, key: u128) -> std::sync::MutexGuard<'_, Map> {
        let index = (key >> 64) as usize % SHARDS;
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for BoundedStore {
    type Key = u128;

    fn measure_and_replace<T, F, E>(&self, key: &u128, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut map = self.shard(*key);
        let old = map.get(key).copied();
        let (outcome, new) = f(old)?;
        if old.is_none() && map.len() >= self.shard_cap {
            // The earliest theoretical arrival times are the fullest
            // buckets: forgetting them loses the least.
            super::bounded::evict_tenth(&mut map, |tat| *tat);
        }
        map.insert(*key, new);
        Ok(outcome)
    }
}

impl ShrinkableKeyedStateStore<u128> for BoundedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        for shard in self.shards.iter() {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            map.retain(|_, tat| *tat > drop_below);
        }
    }

    fn shrink_to_fit(&self) {
        for shard in self.shards.iter() {
            let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
            if map.capacity() > 2 * map.len() + 64 {
                map.shrink_to_fit();
            }
        }
    }

    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

type Limiter = RateLimiter<u128, BoundedStore, DefaultClock, StateInformationMiddleware>;

/// One bounded GCRA limiter per policy, in this process's memory.
pub struct MemoryStore {
    limiters: Vec<Limiter>,
    hashers: [RandomState; 2],
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("keys", &self.key_counts())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// A store for `policies` (indexed by `Policy::index`).
    pub fn new(policies: &[std::sync::Arc<Policy>], max_keys: usize) -> Self {
        let limiters = policies
            .iter()
            .map(|p| {
                let quota = quota(p);
                RateLimiter::<u128, BoundedStore, DefaultClock>::new(
                    quota,
                    BoundedStore::new(max_keys),
                    DefaultClock::default(),
                )
                .with_middleware::<StateInformationMiddleware>()
            })
            .collect();
        Self {
            limiters,
            hashers: [RandomState::new(), RandomState::new()],
        }
    }

    fn hash(&self, key: &LimitKey<'_>) -> u128 {
        let [a, b] = &self.hashers;
        (u128::from(a.hash_one(key)) << 64) | u128::from(b.hash_one(key))
    }

    /// How many keys each policy holds now.
    pub fn key_counts(&self) -> Vec<usize> {
        self.limiters.iter().map(|l| l.len()).collect()
    }

    fn decide(&self, policy: &Policy, key: &LimitKey<'_>) -> Decision {
        let Some(limiter) = self.limiters.get(policy.index) else {
            return Decision::allow_all(policy);
        };
        let q = policy.spec.count.get();
        let emission = policy.spec.period / q;
        match limiter.check_key(&self.hash(key)) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    remaining,
                    reset: emission * (q - remaining.min(q)),
                }
            }
            Err(not_until) => Decision {
                allowed: false,
                remaining: 0,
                reset: not_until.wait_time_from(limiter.clock().now()),
            },
        }
    }
}

fn quota(policy: &Policy) -> Quota {
    let per_cell = policy.spec.period / policy.spec.count.get();
    Quota::with_period(per_cell.max(Duration::from_nanos(1)))
        .unwrap_or_else(|| Quota::per_second(policy.spec.count))
        .allow_burst(policy.spec.count)
}

impl LimitStore for MemoryStore {
    fn check<'a>(
        &'a self,
        policy: &'a Policy,
        key: LimitKey<'a>,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        let decision = self.decide(policy, &key);
        Box::pin(std::future::ready(Ok(decision)))
    }

    fn sweep(&self) {
        for limiter in &self.limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl Hash for LimitKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.ip.hash(state);
        self.user.hash(state);
        self.account.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Arc;

    fn policy(spec: &str) -> Arc<Policy> {
        Arc::new(Policy::new("t", spec.parse().unwrap(), 0))
    }

    fn ip_key(n: u32) -> LimitKey<'static> {
        LimitKey {
            ip: Some(IpAddr::V4(Ipv4Addr::from(n))),
            ..LimitKey::default()
        }
    }

    #[test]
    fn a_burst_of_n_passes_then_the_next_is_refused() {
        let p = policy("3/minute per ip");
        let store = MemoryStore::new(std::slice::from_ref(&p), 1_000);
        let remaining: Vec<u32> = (0..3)
            .map(|_| store.decide(&p, &ip_key(1)).remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = store.decide(&p, &ip_key(1));
        assert!(!refused.allowed);
        assert!(
            refused.reset > Duration::from_secs(15) && refused.reset <= Duration::from_secs(20)
        );
        assert!(
            store.decide(&p, &ip_key(2)).allowed,
            "another key has its own bucket"
        );
    }

    #[test]
    fn the_number_of_keys_never_passes_the_cap() {
        let p = policy("5/hour per ip");
        let store = MemoryStore::new(std::slice::from_ref(&p), 1_000);
        for n in 0..50_000 {
            store.decide(&p, &ip_key(n));
        }
        assert!(store.key_counts()[0] <= 1_024, "{:?}", store.key_counts());
    }

    #[test]
    fn stale_keys_are_swept() {
        let p = policy("1000/second per ip");
        let store = MemoryStore::new(std::slice::from_ref(&p), 100_000);
        for n in 0..1_000 {
            store.decide(&p, &ip_key(n));
        }
        assert_eq!(store.key_counts()[0], 1_000);
        std::thread::sleep(Duration::from_millis(20));
        store.sweep();
        assert_eq!(store.key_counts()[0], 0);
    }
}
