//! The state every handler can reach: cheap to clone, `Arc`s inside.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::auth::hashing::Hasher;
use crate::auth::jwt::AccessTokens;
use crate::auth::throttle::LoginThrottle;
use crate::domain::PasswordPolicy;
use crate::ratelimit::RateLimiter;
use crate::settings::Settings;
use crate::storage::Db;

/// Shared application state.
#[derive(Clone, Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub limiter: Arc<RateLimiter>,
    pub db: Db,
    pub tokens: Arc<AccessTokens>,
    pub hasher: Arc<Hasher>,
    pub passwords: Arc<PasswordPolicy>,
    pub throttle: Arc<LoginThrottle>,
}

impl FromRef<AppState> for Arc<RateLimiter> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.limiter)
    }
}
