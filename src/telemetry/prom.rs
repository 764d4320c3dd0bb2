//! Prometheus metrics: the process-wide recorder (metrics-exporter-
//! prometheus behind the `metrics` facade) and the text it renders.
//!
//! Code anywhere records through the `metrics` macros, which do nothing
//! until [`install`] has run (it runs only when metrics are on). Names and
//! labels are listed in docs/operations.md; no label ever carries a user
//! id, an address, a token or a raw path.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets of the request-duration histogram, in seconds.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process; later calls return the same
/// handle). `None` if another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Some(handle);
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_DURATION.to_owned()), DURATION_BUCKETS)
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    match metrics::set_global_recorder(recorder) {
        Ok(()) => {
            describe();
            let _ = HANDLE.set(handle);
        }
        Err(e) => {
            tracing::warn!(error = %e, "another metrics recorder is installed; /metrics stays empty");
            return None;
        }
    }
    HANDLE.get()
}

/// The handle, once installed.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE.get()
}

/// The text exposition format of every metric recorded so far.
pub fn render() -> String {
    match HANDLE.get() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}

pub const REQUESTS: &str = "palisade_http_requests_total";
pub const REQUEST_DURATION: &str = "palisade_http_request_duration_seconds";
pub const RATE_LIMIT_REFUSALS: &str = "palisade_rate_limit_refusals_total";
pub const LOGINS: &str = "palisade_logins_total";
pub const REFRESH_REUSE: &str = "palisade_refresh_token_reuse_total";
pub const SESSIONS_ENDED: &str = "palisade_sessions_ended_total";
pub const HASH_JOBS: &str = "palisade_hash_jobs";
pub const DB_CONNECTIONS: &str = "palisade_db_pool_connections";
pub const REDIS_UP: &str = "palisade_redis_up";
pub const REDIS_FALLBACKS: &str = "palisade_redis_fallbacks_total";
pub const MAILS: &str = "palisade_mail_total";
pub const GATEWAY_UPSTREAM_ERRORS: &str = "palisade_gateway_upstream_errors_total";
pub const GATEWAY_UPSTREAM_DURATION: &str = "palisade_gateway_upstream_duration_seconds";

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        "HTTP requests answered, by route template, method and status class."
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer, by route template and method."
    );
    describe_counter!(
        GATEWAY_UPSTREAM_ERRORS,
        "Gateway requests the upstream did not answer, by route pattern and kind (connect, connect_timeout, timeout, protocol)."
    );
    describe_histogram!(
        GATEWAY_UPSTREAM_DURATION,
        Unit::Seconds,
        "Time from forwarding a gateway request to the upstream's response head, by route pattern."
    );
    describe_counter!(
        RATE_LIMIT_REFUSALS,
        "Requests refused by a rate-limit policy, by policy."
    );
    describe_counter!(
        LOGINS,
        "Password and second-factor login steps, by outcome."
    );
    describe_counter!(
        REFRESH_REUSE,
        "Used refresh tokens presented again (their sessions ended)."
    );
    describe_counter!(
        SESSIONS_ENDED,
        "Sessions ended before their expiry, by reason."
    );
    describe_gauge!(
        HASH_JOBS,
        "Password hashing jobs running on the pool or waiting for it."
    );
    describe_gauge!(DB_CONNECTIONS, "Database pool connections, in use or idle.");
    describe_gauge!(
        REDIS_UP,
        "1 while the configured Redis answers, 0 while limits fall back to memory."
    );
    describe_counter!(
        REDIS_FALLBACKS,
        "Times the rate limiter fell back from Redis to memory."
    );
    describe_counter!(
        MAILS,
        "Account mail by outcome: sent, failed (given up), dropped (queue full), retried."
    );
}

/// The status class label: `2xx`, `4xx`...
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    /// `storage` and `ratelimit` sit beside `telemetry` and may not import
    /// it, so they spell two names out: keep them equal.
    #[test]
    fn the_names_spelled_out_by_peer_modules_match() {
        let sessions = include_str!("../storage/sessions.rs");
        let limiter = include_str!("../ratelimit/mod.rs");
        assert!(sessions.contains(&format!("\"{}\"", super::SESSIONS_ENDED)));
        assert!(limiter.contains(&format!("\"{}\"", super::RATE_LIMIT_REFUSALS)));
    }
}
