//! The state every handler can reach: cheap to clone, `Arc`s inside.

use std::sync::Arc;

use axum::extract::FromRef;

use crate::ratelimit::RateLimiter;
use crate::settings::Settings;

/// Shared application state.
#[derive(Clone, Debug)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub limiter: Arc<RateLimiter>,
}

impl FromRef<AppState> for Arc<RateLimiter> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.limiter)
    }
}
