//! Re-authentication for sensitive acts (a password change, account
//! deletion, second-factor changes): the password again, checked on the
//! hashing pool under the same failed-login back-off as a login.

use super::AuthState;
use super::hashing::Verified;
use crate::error::{ApiError, FieldError, Result};
use crate::storage::users;

/// Checks `password` as `user_id`'s; a wrong one is a 422 on `field`, a
/// backed-off account a 429.
pub async fn confirm_password(
    state: &AuthState,
    user_id: &str,
    password: &str,
    field: &str,
) -> Result<()> {
    // The login's key: a wrong password here counts toward the same budget
    // as a failed login.
    let account = super::backoff::account_key(user_id);
    if let Err(wait) = state.throttle.attempt(&account).await {
        let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
        return Err(ApiError::TooManyRequests { retry_after });
    }
    let stored = users::password_hash(state.db.pool(), user_id).await?;
    let verified = state
        .hasher
        .verify(password.to_owned(), stored.map(|h| h.expose().to_owned()))
        .await?;
    if verified == Verified::No {
        return Err(ApiError::Validation(vec![FieldError::new(
            field,
            "is incorrect",
        )]));
    }
    state.throttle.success(&account).await;
    Ok(())
}
