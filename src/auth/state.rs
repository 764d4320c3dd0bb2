//! The narrow states that authentication and the account features reach
//! through axum's `FromRef`, so that none of them depends on the whole
//! application state (which the assembly, `state::AppState`, owns and
//! narrows into these).

use std::sync::Arc;

use super::backoff::Backoff;
use super::hashing::Hasher;
use super::jwt::AccessTokens;
use super::mfa::MfaKeys;
use super::signing::SigningKeys;
use crate::cache::SessionCache;
use crate::domain::PasswordPolicy;
use crate::mail::Mailer;
use crate::ratelimit::RateLimiter;
use crate::settings::Settings;
use crate::storage::Db;

/// What the bearer extractors need: the keys that verify an access token,
/// and the session cache and database that say whether its session is
/// still open.
#[derive(Debug, Clone)]
pub struct Authn {
    pub db: Db,
    pub tokens: Arc<AccessTokens>,
    pub sessions: SessionCache,
}

/// What registration, login, token rotation and the caller's own account
/// need: the database, the token keys, the hashing pool, the password
/// rules, the failed-login back-off, the account-keyed rate limits and the
/// settings.
#[derive(Debug, Clone)]
pub struct AuthState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub tokens: Arc<AccessTokens>,
    pub hasher: Arc<Hasher>,
    pub passwords: Arc<PasswordPolicy>,
    pub throttle: Arc<Backoff>,
    pub limiter: Arc<RateLimiter>,
    /// Evicted after every write that ends or changes a session or user.
    pub sessions: SessionCache,
    /// The keys that seal second factors.
    pub mfa: Arc<MfaKeys>,
    /// Account mail and security notices.
    pub mailer: Mailer,
    /// The gateway's identity keys, published in the JWKS beside the
    /// access-token keys (gateway mode only).
    pub identity_keys: Option<Arc<SigningKeys>>,
}
