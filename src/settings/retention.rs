//! `[retention]`: how long rows that stopped mattering are kept, and how
//! often the background pruner runs.

use std::time::Duration;

use super::reader::{Reader, any_duration};
use super::setting::Setting;

/// `[retention]`.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    pub sessions: Duration,
    pub events: Duration,
    pub tokens: Duration,
    /// `0s`: no background pruning (`palisade prune` still works).
    pub prune_interval: Duration,
}

impl RetentionSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        Some(Self {
            sessions: r.duration(
                Setting::new("retention.sessions", "PALISADE_RETENTION_SESSIONS", "30d")
                    .help("How long an ended or expired session (and its refresh tokens) is kept before it is pruned."),
            )?,
            events: r.duration(
                Setting::new("retention.events", "PALISADE_RETENTION_EVENTS", "90d")
                    .help("How long security events (the audit trail) are kept."),
            )?,
            tokens: r.duration(
                Setting::new("retention.tokens", "PALISADE_RETENTION_TOKENS", "1d")
                    .help("How long refresh tokens, mailed tokens and MFA challenges are kept after they expired (used or not)."),
            )?,
            prune_interval: r.parse(
                Setting::new("retention.prune_interval", "PALISADE_PRUNE_INTERVAL", "1h")
                    .help("How often each instance prunes, in batches of 1000 rows per statement (`0s`: never; `palisade prune` still does)."),
                any_duration,
            )?,
        })
    }
}
