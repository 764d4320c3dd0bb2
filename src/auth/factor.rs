//! Checking a second-factor code for a user: a TOTP code of an unused
//! time step within ±1 step, or an unused recovery code. Every check
//! counts in the account's failed-login back-off, and only a right code
//! takes the reservation back.

use std::time::Duration;

use super::AuthState;
use super::audit::{self, Event, RequestContext};
use super::{backoff, mfa};
use crate::error::ApiError;
use crate::storage::{self, mfa as factors};

/// How a code proved the factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Totp,
    RecoveryCode,
}

impl Proof {
    /// The RFC 8176 `amr` value.
    pub fn amr(self) -> &'static str {
        match self {
            Self::Totp => "otp",
            Self::RecoveryCode => "rc",
        }
    }
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Right(Proof),
    /// Wrong, replayed, used, or no active factor.
    Wrong,
    /// The account is backing off; nothing was checked.
    Throttled(Duration),
}

/// Checks `code` against the active factor of `user_id` and records what
/// happened (never the code).
pub async fn check(
    state: &AuthState,
    ctx: &RequestContext,
    user_id: &str,
    code: &str,
) -> Result<Check, ApiError> {
    let key = backoff::account_key(user_id);
    if let Err(wait) = state.throttle.attempt(&key).await {
        return Ok(Check::Throttled(wait));
    }
    let pool = state.db.pool();
    let code = code.trim();
    let factor = factors::factor(pool, user_id)
        .await?
        .filter(|f| f.confirmed);
    let mut why = "no active factor";
    if let Some(factor) = factor {
        why = "wrong code";
        if mfa::looks_like_totp(code) {
            let secret = state
                .mfa
                .open(user_id, &factor.sealed_secret)
                .map_err(|e| ApiError::Internal(e.into()))?;
            let now = u64::try_from(storage::now_ms() / 1000).unwrap_or(0);
            if let Some(step) = mfa::matching_step(&secret, code, now) {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                if factors::accept_step(pool, user_id, step).await? {
                    state.throttle.success(&key).await;
                    return Ok(Check::Right(Proof::Totp));
                }
                why = "replayed code";
            }
        } else if let Some(normal) = mfa::normalize_recovery_code(code) {
            let digest = state.mfa.code_digest(user_id, &normal);
            if factors::use_code(pool, user_id, &digest, storage::now_ms()).await? {
                state.throttle.success(&key).await;
                audit::record(&state.db, Event::RecoveryCodeUsed, ctx, Some(user_id), None).await?;
                return Ok(Check::Right(Proof::RecoveryCode));
            }
            why = "wrong or used recovery code";
        }
    }
    audit::record(&state.db, Event::MfaFailure, ctx, Some(user_id), Some(why)).await?;
    Ok(Check::Wrong)
}
