//! Proving the address and recovering a forgotten password:
//! `POST /auth/verify-email/request`, `POST /auth/verify-email`,
//! `POST /auth/password-reset/request`, `POST /auth/password-reset`.
//!
//! A reset request answers 202 with the same body at once whether or not
//! the address has an account: the lookup, the token and the mail happen
//! after the answer, off the request's path, so neither the answer nor
//! its timing says anything. The same per-address limit (3 an hour, the
//! `mail` policy) applies to known and unknown addresses alike; a request
//! past it is answered the same way and mails nothing, so the server
//! cannot be used to flood a mailbox.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::auth::audit::{self, Event, RequestContext};
use crate::auth::notices::{self, Notice};
use crate::auth::{AuthState, AuthUser, refresh};
use crate::domain::Email;
use crate::domain::password::Owner;
use crate::error::{ApiError, FieldError, Result};
use crate::http::extract::ApiJson;
use crate::storage::email_tokens::{self, Purpose};
use crate::storage::{self, sessions, sessions::EndReason, users};

/// Reset requests being handled after their answer, at most.
const BACKGROUND_RESETS: usize = 256;

static RESETS: LazyLock<Arc<Semaphore>> =
    LazyLock::new(|| Arc::new(Semaphore::new(BACKGROUND_RESETS)));

const INVALID_TOKEN: &str = "The token is invalid, used or expired";

fn too_many(retry_after: std::time::Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after: retry_after.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Checks the per-address `mail` policy of `route` for `address_key`.
/// `Ok(None)`: allowed.
async fn mail_limit(
    state: &AuthState,
    route: &str,
    address_key: &str,
) -> Result<Option<std::time::Duration>> {
    let checks = state
        .limiter
        .check_account(&http::Method::POST, route, None, address_key)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "rate limiter unavailable");
            ApiError::Unavailable("Rate limiting is unavailable; try again shortly".into())
        })?;
    Ok(checks
        .iter()
        .find(|(_, d)| !d.allowed)
        .map(|(_, d)| d.reset))
}

/// Mails the caller a link that verifies their address.
#[utoipa::path(post, path = "/auth/verify-email/request", tag = "accounts", security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 202, description = "A link was mailed (nothing is mailed for an address already verified)"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Three requests an hour per address", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn request_verification(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
) -> Result<StatusCode> {
    let user = &caller.user;
    if user.email_verified {
        return Ok(StatusCode::ACCEPTED);
    }
    let key = crate::domain::email::login_key(&user.email);
    if let Some(wait) = mail_limit(&state, "/auth/verify-email/request", &key).await? {
        return Err(too_many(wait));
    }
    notices::send_token(&state, user, Purpose::Verify).await?;
    audit::record(
        &state.db,
        Event::VerificationRequested,
        &ctx,
        Some(&user.id),
        None,
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// A mailed token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub token: String,
}

/// `POST /auth/password-reset/request`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub email: String,
}

/// `POST /auth/password-reset`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    pub token: String,
    pub new_password: String,
}

impl std::fmt::Debug for TokenBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenBody").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ResetBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetBody").finish_non_exhaustive()
    }
}

/// Verifies the address a token was mailed to.
#[utoipa::path(post, path = "/auth/verify-email", tag = "accounts",
    request_body = TokenBody,
    responses(
        (status = 204, description = "The address is verified"),
        (status = 400, description = "Invalid, used or expired token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn verify(
    State(state): State<AuthState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<StatusCode> {
    let invalid = || ApiError::BadRequest(INVALID_TOKEN.into());
    if !refresh::looks_prefixed(notices::VERIFY_PREFIX, &body.token) {
        return Err(invalid());
    }
    let now = storage::now_ms();
    let mut tx = state.db.pool().begin().await?;
    let Some(found) =
        email_tokens::spend(&mut *tx, &refresh::hash(&body.token), Purpose::Verify, now).await?
    else {
        return Err(invalid());
    };
    // The stamp is the address the token was sent to: if the account's
    // address is another now, nothing is verified.
    if !users::set_email_verified(&mut *tx, &found.user_id, &found.stamp, now).await? {
        return Err(invalid());
    }
    tx.commit().await?;
    state.sessions.invalidate(&found.user_id).await;
    audit::record(
        &state.db,
        Event::EmailVerified,
        &ctx,
        Some(&found.user_id),
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mails a reset link if the address has an account. The answer is the
/// same either way, and comes before any lookup.
#[utoipa::path(post, path = "/auth/password-reset/request", tag = "accounts",
    request_body = ResetRequest,
    responses(
        (status = 202, description = "If the address has an account, a link is on its way"),
        (status = 422, description = "Not an email address", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn request_reset(
    State(state): State<AuthState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("email", e)]))?;
    let key = email.key();
    match Arc::clone(&RESETS).try_acquire_owned() {
        Ok(permit) => {
            tokio::spawn(async move {
                if let Err(e) = reset_in_background(&state, &ctx, &key).await {
                    tracing::error!(error = %e, "password reset request not handled");
                }
                drop(permit);
            });
        }
        Err(_) => tracing::error!("password reset request dropped: too many in progress"),
    }
    Ok(StatusCode::ACCEPTED)
}

/// The part of a reset request that happens after its answer.
async fn reset_in_background(state: &AuthState, ctx: &RequestContext, key: &str) -> Result<()> {
    if mail_limit(state, "/auth/password-reset/request", key)
        .await?
        .is_some()
    {
        tracing::warn!("password reset request over the per-address limit: nothing mailed");
        return Ok(());
    }
    let Some(user) = users::find_by_email_key(state.db.pool(), key).await? else {
        tracing::info!("password reset requested for an address without an account");
        return Ok(());
    };
    if user.disabled {
        audit::record(
            &state.db,
            Event::PasswordResetRequested,
            ctx,
            Some(&user.id),
            Some("disabled: nothing mailed"),
        )
        .await?;
        return Ok(());
    }
    notices::send_token(state, &user, Purpose::Reset).await?;
    audit::record(
        &state.db,
        Event::PasswordResetRequested,
        ctx,
        Some(&user.id),
        None,
    )
    .await?;
    Ok(())
}

/// Sets a new password with a mailed token. Every session of the account
/// ends; a second factor stays.
#[utoipa::path(post, path = "/auth/password-reset", tag = "accounts",
    request_body = ResetBody,
    responses(
        (status = 204, description = "The password is changed"),
        (status = 400, description = "Invalid, used or expired token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "A weak password, or a malformed body", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn reset(
    State(state): State<AuthState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<ResetBody>,
) -> Result<StatusCode> {
    let invalid = || ApiError::BadRequest(INVALID_TOKEN.into());
    if !refresh::looks_prefixed(notices::RESET_PREFIX, &body.token) {
        return Err(invalid());
    }
    let pool = state.db.pool();
    let hash = refresh::hash(&body.token);
    // Read first, without spending: a weak new password must not burn the
    // token. The stamp is checked again when it is spent.
    let Some(user) = email_tokens::peek(pool, &hash, Purpose::Reset, storage::now_ms())
        .await?
        .and_then(|(user, stamp)| (notices::reset_stamp(&user) == stamp).then_some(user))
        .filter(|u| !u.disabled)
    else {
        return Err(invalid());
    };
    let owner = Owner {
        username: &user.username,
        email: &user.email,
        name: &user.name,
    };
    let new = state
        .passwords
        .check(&body.new_password, owner)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("new_password", e)]))?;
    let new_hash = state.hasher.hash(new.expose().to_owned()).await?;
    let now = storage::now_ms();
    let mut tx = pool.begin().await?;
    users::lock(&mut *tx, &user.id).await?;
    let spent = email_tokens::spend(&mut *tx, &hash, Purpose::Reset, now).await?;
    let current = users::find_by_id(&mut *tx, &user.id).await?;
    let still_valid = match (&spent, &current) {
        (Some(found), Some(current)) => {
            found.user_id == current.id && notices::reset_stamp(current) == found.stamp
        }
        _ => false,
    };
    if !still_valid {
        return Err(invalid());
    }
    users::set_password(&mut *tx, &user.id, &new_hash, now).await?;
    // The mailbox was just proved too.
    users::set_email_verified(&mut *tx, &user.id, &user.email, now).await?;
    email_tokens::void_all(&mut *tx, &user.id, Purpose::Reset, now).await?;
    sessions::end_all(&mut *tx, &user.id, None, EndReason::PasswordReset, now).await?;
    let row = audit::event(
        Event::PasswordReset,
        &ctx,
        Some(&user.id),
        Some(&user.id),
        None,
    );
    storage::events::insert(&mut *tx, &row, now).await?;
    tx.commit().await?;
    state.sessions.invalidate(&user.id).await;
    // A reset is also proof against the failed-login back-off.
    state
        .throttle
        .success(&crate::auth::backoff::account_key(&user.id))
        .await;
    notices::notify(&state, &user, &Notice::PasswordReset);
    Ok(StatusCode::NO_CONTENT)
}
