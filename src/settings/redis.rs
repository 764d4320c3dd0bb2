//! `[redis]`: the shared store that many instances count rate limits in.
//! Off (every limit in the process) unless `REDIS_URL` is set.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::reader::Reader;
use super::setting::Setting;

/// `[redis]`.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    /// `None`: no Redis; limits are counted in each process.
    pub url: Option<SecretString>,
    /// Longest one Redis call may take before the instance answers from
    /// its own memory instead.
    pub timeout: Duration,
    /// Longest an instance that ends a session waits for every other to
    /// confirm it evicted it.
    pub invalidation_timeout: Duration,
    /// CA certificates (PEM) to trust for `rediss://` instead of the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
}

impl RedisSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let url = r.secret(
            Setting::unset("redis.url", "REDIS_URL")
                .note("(unset: limits are counted in each process)")
                .help("Redis for the rate limits many instances share: `redis://[:PASSWORD@]HOST:PORT[/DB]`, `rediss://` for TLS, or a comma-separated list of `redis://` cluster nodes. Needs a configured signing secret (the instances must agree on key digests)."),
            Setting::unset("redis.url_file", "REDIS_URL_FILE").help("Read `REDIS_URL` from this file."),
        );
        let url = url.filter(|u| !u.trim().is_empty());
        if let Some(u) = &url {
            let bad = u
                .split(',')
                .map(str::trim)
                .find(|node| !(node.starts_with("redis://") || node.starts_with("rediss://")));
            if bad.is_some() {
                r.problem(
                    "redis.url",
                    "every node must start with redis:// or rediss://",
                );
            }
        }
        Some(Self {
            url: url.map(SecretString::from),
            timeout: r.duration(
                Setting::new("redis.timeout", "PALISADE_REDIS_TIMEOUT", "50ms")
                    .help("Longest one Redis call may take; past it (or on any Redis error) the instance counts limits in its own memory, says `degraded` in `/health/ready`, and returns to Redis by itself when it answers again."),
            )?,
            invalidation_timeout: r.duration(
                Setting::new("redis.invalidation_timeout", "PALISADE_REDIS_INVALIDATION_TIMEOUT", "500ms")
                    .help("Longest a request that ended a session waits for every instance to confirm, through Redis, that it dropped the session from its cache; past it the request answers anyway and the miss is logged and counted."),
            )?,
            ca_file: r
                .parse(
                    Setting::unset("redis.ca_file", "PALISADE_REDIS_CA_FILE")
                        .help("PEM file of the CA certificates to trust for `rediss://` (a managed Redis with a private CA) instead of the system's roots. Read at start-up."),
                    |text| Ok::<_, String>(PathBuf::from(text)),
                )
                .filter(|p| !p.as_os_str().is_empty()),
        })
    }
}
