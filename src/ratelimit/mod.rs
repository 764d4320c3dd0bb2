//! Rate limiting: named GCRA policies attached to routes, checked against a
//! store before any other work is done for a request.
//!
//! - [`Spec`]: the `N/period per key` language (in `settings`, which parses it).
//! - [`memory`]: the embedded, bounded in-process store.
//! - [`redis`]: the shared store, for many instances: GCRA in one Lua
//!   script per decision on Redis's clock, one key per decision.
//! - [`failover`]: Redis in front of memory, each call under a short
//!   timeout, falling back and coming back by itself (never fail open,
//!   never fail closed).
//!
//! The middleware that applies IP- and user-keyed policies and writes the
//! `RateLimit-Policy` / `RateLimit` / `Retry-After` fields is HTTP plumbing:
//! `http::rate_limit`. This engine knows nothing of HTTP requests beyond a
//! method, a matched path and the headers it hands the subject resolver.
//!
//! Policies keyed by account name need the request body, so handlers check
//! them through [`RateLimiter::check_account`] after parsing and before any
//! hashing or database work.

pub(crate) mod bounded;
pub mod failover;
pub mod memory;
pub mod redis;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{HeaderMap, Method};

use crate::settings::spec::Spec;
use crate::settings::{GatewaySettings, RateLimitSettings};

/// A named limit.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    pub spec: Spec,
    /// Position in the limiter's policy list; stores index their state by it.
    pub index: usize,
    /// This policy's item of the `RateLimit-Policy` field.
    policy_item: String,
}

impl Policy {
    pub fn new(name: &str, spec: Spec, index: usize) -> Self {
        let policy_item = format!("\"{name}\";q={};w={}", spec.count, spec.period.as_secs());
        Self {
            name: name.to_owned(),
            spec,
            index,
            policy_item,
        }
    }

    /// This policy's item of the `RateLimit-Policy` field.
    pub fn policy_item(&self) -> &str {
        &self.policy_item
    }
}

/// What a request is counted by. Absent parts are not part of the key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitKey<'a> {
    /// The client address, already reduced to its IPv6 prefix.
    pub ip: Option<IpAddr>,
    /// The verified subject of the access token.
    pub user: Option<&'a str>,
    /// The account name a login names (lower-cased).
    pub account: Option<&'a str>,
}

/// The outcome of one policy check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests left in the burst after this one.
    pub remaining: u32,
    /// Until the bucket is full again (allowed) or until a retry can pass
    /// (refused).
    pub reset: Duration,
}

impl Decision {
    fn allow_all(policy: &Policy) -> Self {
        Self {
            allowed: true,
            remaining: policy.spec.count.get(),
            reset: Duration::ZERO,
        }
    }
}

/// The limiter store could not answer (a later, shared store can fail).
#[derive(Debug, thiserror::Error)]
#[error("rate-limit store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where limiter state lives. The embedded store is [`memory::MemoryStore`];
/// a shared store can join without touching the middleware.
pub trait LimitStore: Send + Sync + 'static {
    /// Counts one request against `policy` for `key`.
    fn check<'a>(
        &'a self,
        policy: &'a Policy,
        key: LimitKey<'a>,
    ) -> BoxFuture<'a, Result<Decision, StoreError>>;

    /// Housekeeping: forget keys that no longer limit anything.
    fn sweep(&self) {}
}

/// Resolves the verified, live user behind a request's credentials, for
/// user-keyed policies: a token whose session has ended must not spend its
/// user's budget (the request is then limited by its address, like an
/// anonymous one). The assembly supplies it from the auth module's check,
/// which answers from the session cache or one database query.
pub type SubjectResolver = Arc<
    dyn Fn(&HeaderMap) -> futures_util::future::BoxFuture<'static, Option<String>> + Send + Sync,
>;

/// The policy table and the store.
pub struct RateLimiter {
    store: Arc<dyn LimitStore>,
    enabled: bool,
    default: Vec<Arc<Policy>>,
    routes: HashMap<Method, HashMap<String, Vec<Arc<Policy>>>>,
    /// Gateway patterns to their policies (every method).
    patterns: HashMap<String, Vec<Arc<Policy>>>,
    subject: Option<SubjectResolver>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("enabled", &self.enabled)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// A route named in the settings that the server does not have.
#[derive(Debug, thiserror::Error)]
#[error("rate_limit.routes names {0:?}, which is not a route of this server")]
pub struct UnknownRoute(pub String);

/// The policies of `settings`, each indexed by its position: the one
/// order every store indexes its state by.
pub fn policies(settings: &RateLimitSettings) -> Vec<Arc<Policy>> {
    settings
        .policies
        .iter()
        .enumerate()
        .map(|(index, (name, spec))| Arc::new(Policy::new(name, *spec, index)))
        .collect()
}

impl RateLimiter {
    /// Builds the policy table from validated settings. `known_routes` are
    /// the server's `"METHOD /path"` routes: naming any other is an error,
    /// so a typo cannot leave a route on the default policy.
    pub fn from_settings(
        settings: &RateLimitSettings,
        gateway: &GatewaySettings,
        known_routes: &[String],
    ) -> Result<Self, Vec<UnknownRoute>> {
        let policies = policies(settings);
        let by_name: HashMap<&str, &Arc<Policy>> =
            policies.iter().map(|p| (p.name.as_str(), p)).collect();
        let pick = |names: &[String]| -> Vec<Arc<Policy>> {
            names
                .iter()
                .filter_map(|n| by_name.get(n.as_str()).map(|p| Arc::clone(p)))
                .collect()
        };
        let mut unknown = Vec::new();
        let mut routes: HashMap<Method, HashMap<String, Vec<Arc<Policy>>>> = HashMap::new();
        for (route, names) in &settings.routes {
            if !known_routes.iter().any(|r| r == route) {
                unknown.push(UnknownRoute(route.clone()));
                continue;
            }
            let Some((method, path)) = route.split_once(' ') else {
                continue;
            };
            let Ok(method) = Method::from_bytes(method.as_bytes()) else {
                continue;
            };
            routes
                .entry(method)
                .or_default()
                .insert(path.to_owned(), pick(names));
        }
        if !unknown.is_empty() {
            return Err(unknown);
        }
        let patterns = gateway
            .routes
            .iter()
            .filter(|r| !r.limit.is_empty())
            .map(|r| (r.pattern.to_text(), pick(&r.limit)))
            .collect();
        let store = Arc::new(memory::MemoryStore::new(&policies, settings.max_keys));
        Ok(Self {
            store,
            enabled: settings.enabled,
            default: pick(&settings.default),
            routes,
            patterns,
            subject: None,
        })
    }

    /// Replaces the store (a shared store for many instances).
    pub fn with_store(mut self, store: Arc<dyn LimitStore>) -> Self {
        self.store = store;
        self
    }

    /// Lets user-keyed policies find the verified user.
    pub fn with_subject_resolver(mut self, resolver: SubjectResolver) -> Self {
        self.subject = Some(resolver);
        self
    }

    /// The verified user behind a request's credentials, if a subject
    /// resolver is installed and the credentials are valid.
    pub async fn subject_of(&self, headers: &HeaderMap) -> Option<String> {
        match &self.subject {
            Some(resolve) => resolve(headers).await,
            None => None,
        }
    }

    /// The store, for housekeeping.
    pub fn store(&self) -> &Arc<dyn LimitStore> {
        &self.store
    }

    /// The policies of a route (`path` as the router matched it), or the
    /// default ones.
    pub fn policies_for(&self, method: &Method, path: Option<&str>) -> &[Arc<Policy>] {
        if !self.enabled {
            return &[];
        }
        // axum answers HEAD with the GET handler: limit it the same way.
        let method = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        path.and_then(|p| self.routes.get(method)?.get(p))
            .map_or(&self.default, |v| v)
    }

    /// The policies of a gateway pattern, or the default ones.
    pub fn policies_for_pattern(&self, pattern: &str) -> &[Arc<Policy>] {
        if !self.enabled {
            return &[];
        }
        self.patterns.get(pattern).map_or(&self.default, |v| v)
    }

    /// Checks the account-keyed policies of a route for `account`. Handlers
    /// call it once they know the account name, before hashing anything.
    pub async fn check_account(
        &self,
        method: &Method,
        path: &str,
        ip: Option<IpAddr>,
        account: &str,
    ) -> Result<Vec<(Arc<Policy>, Decision)>, StoreError> {
        let mut out = Vec::new();
        for policy in self.policies_for(method, Some(path)) {
            if !policy.spec.key.account {
                continue;
            }
            let key = LimitKey {
                ip: policy.spec.key.ip.then_some(ip).flatten(),
                user: None,
                account: Some(account),
            };
            let decision = self.store.check(policy, key).await?;
            out.push((Arc::clone(policy), decision));
            if !decision.allowed {
                // `telemetry::prom::RATE_LIMIT_REFUSALS` (a peer module: named here).
                metrics::counter!("palisade_rate_limit_refusals_total", "policy" => policy.name.clone())
                    .increment(1);
                break;
            }
        }
        Ok(out)
    }
}
