//! The rate-limit middleware over the [`crate::ratelimit`] engine. It runs
//! on the matched route before the handler, so a refused request costs no
//! body read, no hashing and no database work. Account-keyed policies are
//! left to the handler.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::client_ip::ClientIp;
use super::upstream::RouteLabel;
use crate::error::ApiError;
use crate::ratelimit::{Decision, LimitKey, Policy, RateLimiter};

pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// The middleware.
pub async fn layer(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let policies = match (
        req.extensions().get::<MatchedPath>(),
        req.extensions().get::<RouteLabel>(),
    ) {
        (None, Some(RouteLabel(pattern))) => limiter.policies_for_pattern(pattern),
        (path, _) => limiter.policies_for(req.method(), path.map(MatchedPath::as_str)),
    };
    if policies.iter().all(|p| p.spec.key.account) {
        return next.run(req).await;
    }
    let ip = req.extensions().get::<ClientIp>().map(|c| c.key);
    let user = if policies.iter().any(|p| p.spec.key.user) {
        limiter.subject_of(req.headers()).await
    } else {
        None
    };
    let mut outcomes: Vec<(&Arc<Policy>, Decision)> = Vec::with_capacity(policies.len());
    for policy in policies.iter().filter(|p| !p.spec.key.account) {
        let k = policy.spec.key;
        // A user-keyed policy falls back to the address for anonymous
        // requests, so they are limited too.
        let user = user.as_deref().filter(|_| k.user);
        let key = LimitKey {
            ip: if k.ip || (k.user && user.is_none()) {
                ip
            } else {
                None
            },
            user,
            account: None,
        };
        let decision = match limiter.store().check(policy, key).await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "rate limiter unavailable");
                return ApiError::Unavailable(
                    "Rate limiting is unavailable; try again shortly".into(),
                )
                .into_response();
            }
        };
        outcomes.push((policy, decision));
        if !decision.allowed {
            metrics::counter!(crate::telemetry::prom::RATE_LIMIT_REFUSALS, "policy" => policy.name.clone())
                .increment(1);
            let mut response = too_many(decision);
            write_fields(response.headers_mut(), &outcomes);
            return response;
        }
    }
    let mut response = next.run(req).await;
    write_fields(response.headers_mut(), &outcomes);
    response
}

/// The 429 for a refused decision.
pub fn too_many(decision: Decision) -> Response {
    let retry_after = decision.reset.as_secs_f64().ceil().max(1.0) as u64;
    ApiError::TooManyRequests { retry_after }.into_response()
}

/// Writes `RateLimit-Policy` and `RateLimit` for the checked policies
/// (draft-ietf-httpapi-ratelimit-headers, structured-field lists).
pub fn write_fields(headers: &mut HeaderMap, outcomes: &[(&Arc<Policy>, Decision)]) {
    if outcomes.is_empty() {
        return;
    }
    let mut policy = String::new();
    let mut state = String::new();
    for (i, (p, d)) in outcomes.iter().enumerate() {
        if i > 0 {
            policy.push_str(", ");
            state.push_str(", ");
        }
        policy.push_str(p.policy_item());
        let t = d.reset.as_secs_f64().ceil() as u64;
        let _ = write!(state, "\"{}\";r={};t={}", p.name, d.remaining, t);
    }
    if let Ok(v) = HeaderValue::try_from(policy) {
        headers.insert(RATELIMIT_POLICY.clone(), v);
    }
    if let Ok(v) = HeaderValue::try_from(state) {
        headers.insert(RATELIMIT.clone(), v);
    }
}
