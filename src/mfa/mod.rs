//! The caller's second factor: `POST /mfa/totp` (a pending factor, with
//! the password), `POST /mfa/totp/confirm` (active with a first code; ten
//! recovery codes shown once), `DELETE /mfa/totp` and
//! `POST /mfa/recovery-codes` (password and a code).
//!
//! The enrolment routes take [`EnrollingUser`], so a user whose role must
//! have a factor can reach them with the restricted tokens they get
//! until they have one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::audit::{self, Event, RequestContext};
use crate::auth::factor::{self, Check};
use crate::auth::mfa;
use crate::auth::notices::{self, Notice};
use crate::auth::reauth::confirm_password;
use crate::auth::{AuthState, AuthUser, EnrollingUser, backoff};
use crate::error::{ApiError, FieldError, Result};
use crate::http::extract::ApiJson;
use crate::storage::{self, mfa as factors, sessions, sessions::EndReason};

/// `POST /mfa/totp`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolBody {
    pub password: String,
}

/// A pending factor: put the secret into an authenticator app (by hand or
/// as the URI's QR code), then confirm with a first code.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Enrolment {
    /// The secret, base32 (160 bits).
    pub secret: String,
    /// `otpauth://totp/...`: SHA-1, 6 digits, 30 s.
    pub otpauth_uri: String,
}

/// `POST /mfa/totp/confirm`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// The authenticator's current code.
    pub code: String,
}

/// The password and a code (TOTP or recovery), for removing the factor or
/// replacing the recovery codes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordAndCode {
    pub password: String,
    /// A TOTP code or an unused recovery code.
    pub code: String,
}

/// Recovery codes, shown once.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Ten single-use codes; each logs in once instead of a TOTP code.
    pub recovery_codes: Vec<String>,
}

macro_rules! redacted_debug {
    ($($t:ty),*) => {$(
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t)).finish_non_exhaustive()
            }
        }
    )*};
}
redacted_debug!(
    EnrolBody,
    Enrolment,
    ConfirmBody,
    PasswordAndCode,
    RecoveryCodes
);

fn no_randomness(e: getrandom::Error) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("no randomness: {e}"))
}

fn wrong_code() -> ApiError {
    ApiError::Validation(vec![FieldError::new("code", "is incorrect")])
}

fn too_many(wait: std::time::Duration) -> ApiError {
    ApiError::TooManyRequests {
        retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
    }
}

/// Starts enrolling a TOTP factor (replacing a pending one).
#[utoipa::path(post, path = "/mfa/totp", tag = "mfa", security(("bearer" = []), ("oauth2" = [])),
    request_body = EnrolBody,
    responses(
        (status = 200, description = "A pending factor", body = Enrolment),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A factor is already active", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn enrol(
    State(state): State<AuthState>,
    ctx: RequestContext,
    EnrollingUser(caller): EnrollingUser,
    ApiJson(body): ApiJson<EnrolBody>,
) -> Result<Json<Enrolment>> {
    let user = &caller.user;
    confirm_password(&state, &user.id, &body.password, "password").await?;
    let secret = mfa::new_secret().map_err(no_randomness)?;
    let sealed = state.mfa.seal(&user.id, &secret).map_err(no_randomness)?;
    let now = storage::now_ms();
    if !factors::put_pending(state.db.pool(), &user.id, &sealed, now).await? {
        return Err(ApiError::Conflict(
            "A second factor is already active; remove it first".into(),
        ));
    }
    audit::record(
        &state.db,
        Event::MfaEnrolStarted,
        &ctx,
        Some(&user.id),
        None,
    )
    .await?;
    Ok(Json(Enrolment {
        secret: mfa::secret_base32(&secret),
        otpauth_uri: mfa::otpauth_uri(&secret, &state.settings.auth.issuer, &user.username),
    }))
}

/// Activates the pending factor with a first code. Every other session
/// of the user ends; ten recovery codes are shown once.
#[utoipa::path(post, path = "/mfa/totp/confirm", tag = "mfa", security(("bearer" = []), ("oauth2" = [])),
    request_body = ConfirmBody,
    responses(
        (status = 200, description = "The factor is active", body = RecoveryCodes),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No pending factor", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong code", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Backing off after wrong codes", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn confirm(
    State(state): State<AuthState>,
    ctx: RequestContext,
    EnrollingUser(caller): EnrollingUser,
    ApiJson(body): ApiJson<ConfirmBody>,
) -> Result<Json<RecoveryCodes>> {
    let user = &caller.user;
    let pool = state.db.pool();
    let pending = factors::factor(pool, &user.id)
        .await?
        .filter(|f| !f.confirmed)
        .ok_or_else(|| ApiError::Conflict("No pending factor: start at POST /mfa/totp".into()))?;
    let key = backoff::account_key(&user.id);
    state.throttle.attempt(&key).await.map_err(too_many)?;
    let secret = state
        .mfa
        .open(&user.id, &pending.sealed_secret)
        .map_err(|e| ApiError::Internal(e.into()))?;
    let now_secs = u64::try_from(storage::now_ms() / 1000).unwrap_or(0);
    let Some(step) = mfa::matching_step(&secret, body.code.trim(), now_secs) else {
        audit::record(
            &state.db,
            Event::MfaFailure,
            &ctx,
            Some(&user.id),
            Some("wrong code at confirmation"),
        )
        .await?;
        return Err(wrong_code());
    };
    let codes = mfa::new_recovery_codes().map_err(no_randomness)?;
    let digests: Vec<String> = codes
        .iter()
        .map(|c| state.mfa.code_digest(&user.id, c))
        .collect();
    let now = storage::now_ms();
    let step = i64::try_from(step).unwrap_or(i64::MAX);
    if !factors::confirm(pool, &user.id, step, &digests, now).await? {
        // Confirmed meanwhile by another request, or the pending factor
        // replaced: this code no longer applies.
        return Err(ApiError::Conflict(
            "No pending factor: start at POST /mfa/totp".into(),
        ));
    }
    state.throttle.success(&key).await;
    sessions::end_all(
        pool,
        &user.id,
        Some(&caller.claims.sid),
        EndReason::MfaEnabled,
        now,
    )
    .await?;
    state.sessions.invalidate(&user.id).await;
    audit::record(&state.db, Event::MfaEnabled, &ctx, Some(&user.id), None).await?;
    notices::notify(&state, user, &Notice::MfaEnabled);
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// The password, then a code of the active factor.
async fn reauthenticate(
    state: &AuthState,
    ctx: &RequestContext,
    user_id: &str,
    body: &PasswordAndCode,
) -> Result<()> {
    confirm_password(state, user_id, &body.password, "password").await?;
    if !factors::has_active_factor(state.db.pool(), user_id).await? {
        return Err(ApiError::Conflict("No second factor is active".into()));
    }
    match factor::check(state, ctx, user_id, &body.code).await? {
        Check::Right(_) => Ok(()),
        Check::Wrong => Err(wrong_code()),
        Check::Throttled(wait) => Err(too_many(wait)),
    }
}

/// Removes the factor and its recovery codes.
#[utoipa::path(delete, path = "/mfa/totp", tag = "mfa", security(("bearer" = []), ("oauth2" = [])),
    request_body = PasswordAndCode,
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No factor is active", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password or code", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Backing off after wrong codes", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn remove(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
    ApiJson(body): ApiJson<PasswordAndCode>,
) -> Result<StatusCode> {
    let user = &caller.user;
    reauthenticate(&state, &ctx, &user.id, &body).await?;
    factors::remove(state.db.pool(), &user.id).await?;
    // Tokens of a role that must have a factor lose their reach at once.
    state.sessions.invalidate(&user.id).await;
    audit::record(&state.db, Event::MfaDisabled, &ctx, Some(&user.id), None).await?;
    notices::notify(&state, user, &Notice::MfaDisabled);
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the recovery codes: the old set is void.
#[utoipa::path(post, path = "/mfa/recovery-codes", tag = "mfa", security(("bearer" = []), ("oauth2" = [])),
    request_body = PasswordAndCode,
    responses(
        (status = 200, description = "A fresh set", body = RecoveryCodes),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "No factor is active", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password or code", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Backing off after wrong codes", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn regenerate_codes(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
    ApiJson(body): ApiJson<PasswordAndCode>,
) -> Result<Json<RecoveryCodes>> {
    let user = &caller.user;
    reauthenticate(&state, &ctx, &user.id, &body).await?;
    let codes = mfa::new_recovery_codes().map_err(no_randomness)?;
    let digests: Vec<String> = codes
        .iter()
        .map(|c| state.mfa.code_digest(&user.id, c))
        .collect();
    if !factors::regenerate_codes(state.db.pool(), &user.id, &digests, storage::now_ms()).await? {
        return Err(ApiError::Conflict("No second factor is active".into()));
    }
    audit::record(
        &state.db,
        Event::RecoveryCodesRegenerated,
        &ctx,
        Some(&user.id),
        None,
    )
    .await?;
    notices::notify(&state, user, &Notice::RecoveryCodesRegenerated);
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}
