//! Recording security events with who, from where and under which request.

use axum::extract::FromRequestParts;
use http::request::Parts;
use std::convert::Infallible;

use crate::error::ApiError;
use crate::http::client_ip::ClientIp;
use crate::http::request_id::RequestId;
use crate::storage::{self, Db, events::NewEvent};

/// The request facts every event carries.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            ip: parts
                .extensions
                .get::<ClientIp>()
                .map(|c| c.addr.to_string()),
            user_agent: parts
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| ua.chars().take(256).collect()),
            request_id: parts
                .extensions
                .get::<RequestId>()
                .and_then(|r| r.0.to_str().ok())
                .map(str::to_owned),
        })
    }
}

/// The kinds of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Register,
    LoginSuccess,
    LoginFailure,
    Refresh,
    RefreshReuse,
    Logout,
    Revoke,
    PasswordChange,
    AccountDelete,
    AdminUpdateUser,
    AdminDeleteUser,
    SessionEnd,
    MfaEnrolStarted,
    MfaEnabled,
    MfaDisabled,
    MfaFailure,
    MfaChallenge,
    RecoveryCodeUsed,
    RecoveryCodesRegenerated,
    VerificationRequested,
    EmailVerified,
    PasswordResetRequested,
    PasswordReset,
    Import,
    ApiKeyCreated,
    ApiKeyDeleted,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::LoginSuccess => "login_success",
            Self::LoginFailure => "login_failure",
            Self::Refresh => "refresh",
            Self::RefreshReuse => "refresh_reuse_detected",
            Self::Logout => "logout",
            Self::Revoke => "revoke",
            Self::PasswordChange => "password_change",
            Self::AccountDelete => "account_delete",
            Self::AdminUpdateUser => "admin_update_user",
            Self::AdminDeleteUser => "admin_delete_user",
            Self::SessionEnd => "session_end",
            Self::MfaEnrolStarted => "mfa_enrol_started",
            Self::MfaEnabled => "mfa_enabled",
            Self::MfaDisabled => "mfa_disabled",
            Self::MfaFailure => "mfa_failure",
            Self::MfaChallenge => "mfa_challenge",
            Self::RecoveryCodeUsed => "recovery_code_used",
            Self::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Self::VerificationRequested => "email_verification_requested",
            Self::EmailVerified => "email_verified",
            Self::PasswordResetRequested => "password_reset_requested",
            Self::PasswordReset => "password_reset",
            Self::Import => "user_import",
            Self::ApiKeyCreated => "api_key_created",
            Self::ApiKeyDeleted => "api_key_deleted",
        }
    }
}

/// Records an event about `user_id`, done by that user. `detail` is
/// internal (e.g. why a login failed).
pub async fn record(
    db: &Db,
    event: Event,
    ctx: &RequestContext,
    user_id: Option<&str>,
    detail: Option<&str>,
) -> Result<(), ApiError> {
    record_by(db, event, ctx, user_id, user_id, detail).await
}

/// The row for an event about `user_id` done by `actor_id`, for callers
/// that write it inside their own transaction.
pub fn event<'a>(
    event: Event,
    ctx: &'a RequestContext,
    actor_id: Option<&'a str>,
    user_id: Option<&'a str>,
    detail: Option<&'a str>,
) -> NewEvent<'a> {
    NewEvent {
        event: event.as_str(),
        user_id,
        actor_id,
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.as_deref(),
        request_id: ctx.request_id.clone(),
        detail,
    }
}

/// Records an event about `user_id` done by `actor_id` (an administrator,
/// or `cli` for the operator commands).
pub async fn record_by(
    db: &Db,
    event: Event,
    ctx: &RequestContext,
    actor_id: Option<&str>,
    user_id: Option<&str>,
    detail: Option<&str>,
) -> Result<(), ApiError> {
    let e = self::event(event, ctx, actor_id, user_id, detail);
    storage::events::insert(db.pool(), &e, storage::now_ms())
        .await
        .map_err(ApiError::from)
}
