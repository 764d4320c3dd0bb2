//! The failed-login back-off as the login paths use it: the table of this
//! process ([`LoginThrottle`]), or, with Redis configured, one back-off
//! shared by every instance (`backoff.lua`: one atomic script on one key
//! per account name, the name kept only as a keyed digest).
//!
//! Redis is asked only while the limiter's failover says it is up, and each
//! call is bounded by `redis.timeout`; a call that fails or times out is
//! answered from this process's table. Like the rate limits, the back-off
//! then degrades to per-instance counting, never to no back-off and never
//! to refusing everyone. The failover logs and reports the change of state;
//! this module only follows it.

use std::time::{Duration, Instant};

use super::throttle::{FORGET_AFTER, LoginThrottle};
use crate::ratelimit::failover::FailoverStore;
use crate::ratelimit::redis::{BackoffOp, RedisStore};

/// The back-off the login paths consult and feed.
#[derive(Debug)]
pub struct Backoff {
    local: LoginThrottle,
    shared: Option<Shared>,
}

#[derive(Debug)]
struct Shared {
    redis: RedisStore,
    health: FailoverStore,
    timeout: Duration,
    free: u32,
    max_delay: Duration,
}

impl Backoff {
    /// This process's table only.
    pub fn local(local: LoginThrottle) -> Self {
        Self {
            local,
            shared: None,
        }
    }

    /// Shared through `redis` while `health` (the limiter's failover) says
    /// Redis is up; `free` and `max_delay` as the local table's.
    pub fn shared(
        local: LoginThrottle,
        redis: RedisStore,
        health: FailoverStore,
        timeout: Duration,
        free: u32,
        max_delay: Duration,
    ) -> Self {
        Self {
            local,
            shared: Some(Shared {
                redis,
                health,
                timeout,
                free,
                max_delay,
            }),
        }
    }

    /// Redis's answer, or `None` to use the local table.
    async fn remote(&self, name: &str, op: BackoffOp) -> Option<Duration> {
        let shared = self.shared.as_ref()?;
        if shared.health.is_degraded() {
            return None;
        }
        match tokio::time::timeout(shared.timeout, shared.redis.backoff(name, op)).await {
            Ok(Ok(wait)) => Some(wait),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "back-off answered locally");
                None
            }
            Err(_) => {
                tracing::debug!("back-off answered locally: Redis timed out");
                None
            }
        }
    }

    /// `Err(wait)` while the account name is backing off.
    pub async fn check(&self, name: &str) -> Result<(), Duration> {
        let name = name.to_lowercase();
        match self.remote(&name, BackoffOp::Check).await {
            Some(wait) if wait.is_zero() => Ok(()),
            Some(wait) => Err(wait),
            None => self.local.check(&name, Instant::now()),
        }
    }

    /// Records a failed login of `name`; returns the wait it imposes.
    pub async fn failure(&self, name: &str) -> Duration {
        let name = name.to_lowercase();
        let op = self.shared.as_ref().map(|s| BackoffOp::Failure {
            free: s.free,
            max_delay: s.max_delay,
            forget: FORGET_AFTER,
        });
        if let Some(op) = op
            && let Some(wait) = self.remote(&name, op).await
        {
            return wait;
        }
        self.local.failure(&name, Instant::now())
    }

    /// Forgets `name` after a successful login, everywhere it is counted.
    pub async fn success(&self, name: &str) {
        let name = name.to_lowercase();
        self.local.success(&name);
        let _ = self.remote(&name, BackoffOp::Success).await;
    }
}
