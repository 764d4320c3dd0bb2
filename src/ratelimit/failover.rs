//! The shared store with a local fallback: decisions come from Redis while
//! it answers in time, and from this process's memory while it does not.
//!
//! The contract for many instances is "never fail open, never fail
//! closed": a Redis outage must neither lift every limit (an attacker's
//! favourite outage) nor refuse every request (an outage of ours made
//! theirs). So no request ever waits on Redis longer than a short timeout,
//! and no Redis failure ever reaches the client: the request that saw it is
//! answered by the in-process [`MemoryStore`], which enforces the same
//! policies per instance until Redis is back.
//!
//! # States
//!
//! ```text
//!            check fails or times out (warn once, fallbacks += 1)
//!   ┌────┐ ─────────────────────────────────────────────────────▶ ┌──────┐
//!   │ Ok │                                                        │ Down │
//!   └────┘ ◀───────────────────────────────────────────────────── └──────┘
//!             the probe's PING answers in time (info once)
//! ```
//!
//! - `Ok`: each check goes to Redis under the timeout. A failure or a
//!   timeout answers that request from memory and moves to `Down`; only the
//!   request that makes the move logs it, however many fail at once.
//! - `Down`: checks go straight to memory, with no Redis call at all, so an
//!   outage costs requests nothing. The [`Probe`] pings Redis about once a
//!   second under the same timeout and moves back to `Ok` when it answers.
//!
//! Budgets are per instance while `Down`, and a key's Redis budget is the
//! one it had before the outage when it ends: the bounded moments the
//! contract allows.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;

use super::memory::MemoryStore;
use super::redis::RedisStore;
use super::{Decision, LimitKey, LimitStore, Policy, StoreError};
use crate::settings::RateLimitSettings;

/// How often the probe asks a Redis that is down whether it is back.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Which store answers now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedState {
    /// Redis answers: budgets are shared by every instance.
    Ok,
    /// Redis does not: this instance answers from its own memory.
    Down,
}

impl SharedState {
    /// `"ok"` or `"down"`, as `/health/ready` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            SharedState::Ok => "ok",
            SharedState::Down => "down",
        }
    }
}

struct Shared {
    primary: RedisStore,
    fallback: Arc<MemoryStore>,
    timeout: Duration,
    down: AtomicBool,
    /// When the current outage began, for the recovery log line.
    down_since: Mutex<Option<Instant>>,
    fallbacks: AtomicU64,
    local_decisions: AtomicU64,
}

/// [`RedisStore`] in front of [`MemoryStore`], switching between them by
/// itself. A cheap handle: clone it to read its state elsewhere.
#[derive(Clone)]
pub struct FailoverStore {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FailoverStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FailoverStore")
            .field("state", &self.state())
            .field("timeout", &self.shared.timeout)
            .field("fallbacks", &self.fallbacks())
            .finish_non_exhaustive()
    }
}

impl FailoverStore {
    /// Puts `primary` in front of `fallback`, each Redis call bounded by
    /// `timeout`. The store starts in [`SharedState::Ok`]; spawn the
    /// returned [`Probe`] (`tokio::spawn(probe.run())`) so that it comes
    /// back from [`SharedState::Down`].
    pub fn new(
        primary: RedisStore,
        fallback: Arc<MemoryStore>,
        timeout: Duration,
    ) -> (Self, Probe) {
        let shared = Arc::new(Shared {
            primary,
            fallback,
            timeout,
            down: AtomicBool::new(false),
            down_since: Mutex::new(None),
            fallbacks: AtomicU64::new(0),
            local_decisions: AtomicU64::new(0),
        });
        let probe = Probe {
            shared: Arc::downgrade(&shared),
            interval: PROBE_INTERVAL,
        };
        (Self { shared }, probe)
    }

    /// Which store answers now.
    pub fn state(&self) -> SharedState {
        if self.is_degraded() {
            SharedState::Down
        } else {
            SharedState::Ok
        }
    }

    /// Whether this instance answers from its own memory now.
    pub fn is_degraded(&self) -> bool {
        self.shared.down.load(Ordering::Relaxed)
    }

    /// How many times the store has fallen back to memory since it started.
    pub fn fallbacks(&self) -> u64 {
        self.shared.fallbacks.load(Ordering::Relaxed)
    }

    /// How many decisions memory has made in Redis's place.
    pub fn local_decisions(&self) -> u64 {
        self.shared.local_decisions.load(Ordering::Relaxed)
    }

    async fn decide(&self, policy: &Policy, key: LimitKey<'_>) -> Result<Decision, StoreError> {
        let s = &self.shared;
        if !s.down.load(Ordering::Relaxed) {
            match tokio::time::timeout(s.timeout, s.primary.check(policy, key)).await {
                Ok(Ok(decision)) => return Ok(decision),
                Ok(Err(e)) => s.fall_back(&e.0),
                Err(_) => s.fall_back(&format!("no answer within {:?}", s.timeout)),
            }
        }
        s.local_decisions.fetch_add(1, Ordering::Relaxed);
        s.fallback.check(policy, key).await
    }
}

impl Shared {
    fn fall_back(&self, reason: &str) {
        if self.down.swap(true, Ordering::AcqRel) {
            return;
        }
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
        *self
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        tracing::warn!(
            error = reason,
            "Redis is unavailable: rate limits are now enforced per instance, from memory"
        );
    }

    fn recover(&self) {
        if !self.down.swap(false, Ordering::AcqRel) {
            return;
        }
        let since = self
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let outage_ms = since.map_or(0, |t| t.elapsed().as_millis());
        tracing::info!(outage_ms, "Redis is back: rate limits are shared again");
    }
}

impl LimitStore for FailoverStore {
    fn check<'a>(
        &'a self,
        policy: &'a Policy,
        key: LimitKey<'a>,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(self.decide(policy, key))
    }

    /// Redis expires its own keys; memory needs the sweep.
    fn sweep(&self) {
        self.shared.fallback.sweep();
    }
}

/// The background task that brings a [`FailoverStore`] back to Redis. It
/// ends by itself once the store is dropped.
#[derive(Debug)]
#[must_use = "a probe does nothing unless it is run: tokio::spawn(probe.run())"]
pub struct Probe {
    shared: Weak<Shared>,
    interval: Duration,
}

impl Probe {
    /// Pings Redis every interval while the store is down, and switches
    /// the store back when Redis answers within the store's timeout.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(shared) = self.shared.upgrade() else {
                return;
            };
            if !shared.down.load(Ordering::Relaxed) {
                continue;
            }
            if let Ok(Ok(())) = tokio::time::timeout(shared.timeout, shared.primary.ping()).await {
                shared.recover();
            }
        }
    }
}

/// The in-process store for the policies of `settings`, indexed as
/// [`super::RateLimiter::from_settings`] indexes them: the fallback to hand
/// to [`FailoverStore::new`].
pub fn fallback_for(settings: &RateLimitSettings) -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new(
        &super::policies(settings),
        settings.max_keys,
    ))
}
