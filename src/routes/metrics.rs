//! `GET /metrics`: the Prometheus text format, on a listener of its own
//! (`metrics.bind`, no token) or on the main one behind a bearer token
//! (`metrics.token`, compared in constant time). Off when neither is set.
//!
//! Gauges that describe the process now (database pool, hashing pool,
//! Redis, mail) are read from the state at each scrape.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::auth::extractor::bearer;
use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::prom;

/// The media type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads the state's gauges and renders every metric.
fn scrape(state: &AppState) -> Response {
    let pool = state.db.pool();
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    metrics::gauge!(prom::DB_CONNECTIONS, "state" => "in_use").set((size - idle).max(0.0));
    metrics::gauge!(prom::DB_CONNECTIONS, "state" => "idle").set(idle);
    let (running, waiting) = state.hasher.load();
    metrics::gauge!(prom::HASH_JOBS, "state" => "running").set(running as f64);
    metrics::gauge!(prom::HASH_JOBS, "state" => "waiting").set(waiting as f64);
    if let Some(redis) = &state.shared_limits {
        metrics::gauge!(prom::REDIS_UP).set(if redis.is_degraded() { 0.0 } else { 1.0 });
        metrics::counter!(prom::REDIS_FALLBACKS).absolute(redis.fallbacks());
    }
    let mail = state.mailer.stats();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    for (outcome, value) in [
        ("sent", load(&mail.sent)),
        ("failed", load(&mail.failed)),
        ("dropped", load(&mail.dropped)),
        ("retried", load(&mail.retried)),
    ] {
        metrics::counter!(prom::MAILS, "outcome" => outcome).absolute(value);
    }
    let mut response = prom::render().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

/// `GET /metrics` on the main listener: the configured token, or 401.
pub async fn with_token(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(expected) = &state.settings.metrics.token else {
        return ApiError::NotFound.into_response();
    };
    let given = match bearer(&headers) {
        Ok(Some(token)) => token,
        Ok(None) => {
            return ApiError::Unauthorized {
                invalid_token: false,
            }
            .into_response();
        }
        Err(_) => {
            return ApiError::Unauthorized {
                invalid_token: true,
            }
            .into_response();
        }
    };
    let ok: bool = given
        .as_bytes()
        .ct_eq(expected.expose_secret().as_bytes())
        .into();
    if !ok {
        return ApiError::Unauthorized {
            invalid_token: true,
        }
        .into_response();
    }
    scrape(&state)
}

/// The router of the metrics listener (`metrics.bind`): `/metrics` only.
pub fn standalone(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { scrape(&state) }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state)
}
