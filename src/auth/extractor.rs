//! `AuthUser`: the authenticated caller, or a 401.
//!
//! The token is read only from `Authorization: Bearer`, verified (see
//! [`super::jwt`]), and then checked against the session cache or, when it
//! does not hold the session, the database in one query: the session must
//! be open and unexpired, the user must exist and not be disabled, and the
//! token must not predate the user's last password change. Any failure is 401 with `WWW-Authenticate: Bearer
//! error="invalid_token"`; no token at all is 401 with `Bearer`.

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use super::Authn;
use super::jwt::Claims;
use crate::domain::User;
use crate::error::ApiError;
use crate::storage::{self, sessions};

/// The caller of a request, with a valid access token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: User,
    pub claims: Claims,
}

/// The caller of a request whose token may be good for enrolling a
/// second factor only (`auth.mfa_required_roles`): for `/profile`,
/// logout and the MFA enrolment routes. Every other route takes
/// [`AuthUser`], which refuses such a token with 403
/// `mfa_enrolment_required`.
#[derive(Debug, Clone)]
pub struct EnrollingUser(pub AuthUser);

/// An `Authorization` header that is not `Bearer <token>`.
#[derive(Debug, Clone, Copy)]
pub struct MalformedAuthorization;

/// The bearer token of a request, if it has one.
pub fn bearer(parts: &http::HeaderMap) -> Result<Option<&str>, MalformedAuthorization> {
    let Some(value) = parts.get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| MalformedAuthorization)?;
    let (scheme, token) = text.split_once(' ').ok_or(MalformedAuthorization)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(MalformedAuthorization);
    }
    Ok(Some(token.trim()))
}

/// The bearer token of a request: `None` without one, 401
/// (`invalid_token`) when `Authorization` is not `Bearer <token>`.
pub fn bearer_token(headers: &http::HeaderMap) -> Result<Option<&str>, ApiError> {
    bearer(headers).map_err(|MalformedAuthorization| ApiError::Unauthorized {
        invalid_token: true,
    })
}

/// 401 without `invalid_token`: no credentials were sent.
pub fn no_credentials() -> ApiError {
    ApiError::Unauthorized {
        invalid_token: false,
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    Authn: FromRef<S>,
{
    type Rejection = ApiError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let EnrollingUser(caller) = EnrollingUser::from_request_parts(parts, state).await?;
        if caller.claims.mfa_enrol {
            return Err(ApiError::MfaEnrolmentRequired);
        }
        Ok(caller)
    }
}

impl<S> FromRequestParts<S> for EnrollingUser
where
    S: Send + Sync,
    Authn: FromRef<S>,
{
    type Rejection = ApiError;

    #[tracing::instrument(skip_all)]
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = Authn::from_ref(state);
        let token = bearer_token(&parts.headers)?.ok_or_else(no_credentials)?;
        super::api_key::refuse_key(token)?;
        authenticate(&state, token).await.map(EnrollingUser)
    }
}

/// The caller behind an access token: the token verified, then its session
/// checked in the session cache or, when the cache does not hold it, in
/// the database. `Unauthorized` (with `invalid_token`) when any check
/// fails; a database error when the database cannot say.
pub async fn authenticate(state: &Authn, token: &str) -> Result<AuthUser, ApiError> {
    let invalid = ApiError::Unauthorized {
        invalid_token: true,
    };
    let claims = state.tokens.verify_fresh(token).await.map_err(|e| {
        tracing::info!(reason = %e, "access token refused");
        ApiError::Unauthorized {
            invalid_token: true,
        }
    })?;
    let now = storage::now_ms();
    let user = match state.sessions.lookup(&claims.sid, &claims.sub, now) {
        Some(user) => user,
        None => {
            // The ticket is taken before the read, so an invalidation that
            // lands while it runs undoes the store (see `cache`).
            let ticket = state.sessions.ticket(&claims.sub);
            let (user, expires_at) =
                sessions::active_user(state.db.pool(), &claims.sid, &claims.sub, now)
                    .await?
                    .ok_or_else(|| {
                        tracing::info!("access token refused: session ended or user gone");
                        ApiError::Unauthorized {
                            invalid_token: true,
                        }
                    })?;
            if !user.disabled {
                state
                    .sessions
                    .store(ticket, &user, &claims.sid, expires_at, now);
            }
            user
        }
    };
    if user.disabled {
        tracing::info!("access token refused: user disabled");
        return Err(invalid);
    }
    let changed_ms = u64::try_from(user.password_changed_at).unwrap_or(0);
    if claims.iat_ms < changed_ms {
        tracing::info!("access token refused: issued before the last password change");
        return Err(invalid);
    }
    // `last_used_at`, at most once a minute per session and instance, off
    // the request's path (a failed write costs only that figure).
    if state.sessions.touch_due(&claims.sid, now) {
        let pool = state.db.pool().clone();
        let session = claims.sid.clone();
        tokio::spawn(async move {
            let since = now - crate::cache::TOUCH_EVERY_MS;
            if let Err(e) = sessions::touch(&pool, &session, now, since).await {
                tracing::debug!(error = %e, "could not record the session's last use");
            }
        });
    }
    Ok(AuthUser { user, claims })
}
