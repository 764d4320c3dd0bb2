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

/// The back-off key of an existing account: its username and email share
/// it.
pub fn account_key(user_id: &str) -> String {
    format!("id:{user_id}")
}

/// The back-off key of a name that resolves to no account.
pub fn name_key(normalised_name: &str) -> String {
    format!("name:{normalised_name}")
}

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

    /// `Err(wait)` while `account` is backing off; otherwise the attempt is
    /// reserved as a failure, atomically with the check (one script in
    /// Redis), and may go ahead. Only [`Backoff::success`] takes it back.
    pub async fn attempt(&self, account: &str) -> Result<(), Duration> {
        let account = account.to_lowercase();
        let op = self.shared.as_ref().map(|s| BackoffOp::Attempt {
            free: s.free,
            max_delay: s.max_delay,
            forget: FORGET_AFTER,
        });
        if let Some(op) = op
            && let Some(wait) = self.remote(&account, op).await
        {
            return if wait.is_zero() { Ok(()) } else { Err(wait) };
        }
        self.local.attempt(&account, Instant::now())
    }

    /// Forgets `name` after a successful login, everywhere it is counted.
    pub async fn success(&self, name: &str) {
        let name = name.to_lowercase();
        self.local.success(&name);
        let _ = self.remote(&name, BackoffOp::Success).await;
    }
}
