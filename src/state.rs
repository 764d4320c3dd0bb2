//! The state of the assembled application: one `Arc`, so the clone axum
//! makes for every request is one reference count, not one per part.
//! Handlers and extractors never take it whole; they take the narrow
//! states below through `FromRef`.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::backoff::Backoff;
use crate::auth::hashing::Hasher;
use crate::auth::jwt::AccessTokens;
use crate::auth::mfa::MfaKeys;
use crate::auth::signing::SigningKeys;
use crate::auth::{AuthState, Authn};
use crate::cache::SessionCache;
use crate::domain::PasswordPolicy;
use crate::gateway::Gateway;
use crate::mail::Mailer;
use crate::ratelimit::RateLimiter;
use crate::ratelimit::failover::FailoverStore;
use crate::settings::Settings;
use crate::storage::Db;

/// Shared application state: [`AppParts`] behind one `Arc` (fields are
/// reached through `Deref`).
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What the application state holds.
#[derive(Debug)]
pub struct AppParts {
    pub settings: Arc<Settings>,
    pub limiter: Arc<RateLimiter>,
    /// The shared (Redis) limit store, when `REDIS_URL` is set: for its
    /// state in `/health/ready`.
    pub shared_limits: Option<FailoverStore>,
    pub db: Db,
    pub tokens: Arc<AccessTokens>,
    pub hasher: Arc<Hasher>,
    pub passwords: Arc<PasswordPolicy>,
    pub throttle: Arc<Backoff>,
    pub sessions: SessionCache,
    pub mfa: Arc<MfaKeys>,
    pub mailer: Mailer,
    /// The Ed25519 keys of the gateway's identities (gateway mode only).
    pub identity_keys: Option<Arc<SigningKeys>>,
    /// Gateway mode: the upstream and its route table.
    pub gateway: Option<Arc<Gateway>>,
}

impl FromRef<AppState> for SessionCache {
    fn from_ref(state: &AppState) -> Self {
        state.sessions.clone()
    }
}

impl FromRef<AppState> for Arc<RateLimiter> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.limiter)
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(state: &AppState) -> Self {
        state.db.clone()
    }
}

impl FromRef<AppState> for Authn {
    fn from_ref(state: &AppState) -> Self {
        Self {
            db: state.db.clone(),
            tokens: Arc::clone(&state.tokens),
            sessions: state.sessions.clone(),
        }
    }
}

impl FromRef<AppState> for AuthState {
    fn from_ref(state: &AppState) -> Self {
        Self {
            settings: Arc::clone(&state.settings),
            db: state.db.clone(),
            tokens: Arc::clone(&state.tokens),
            hasher: Arc::clone(&state.hasher),
            passwords: Arc::clone(&state.passwords),
            throttle: Arc::clone(&state.throttle),
            limiter: Arc::clone(&state.limiter),
            sessions: state.sessions.clone(),
            mfa: Arc::clone(&state.mfa),
            mailer: state.mailer.clone(),
            identity_keys: state.identity_keys.clone(),
        }
    }
}
