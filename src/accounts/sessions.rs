//! The caller's own sessions: `GET /sessions`, `DELETE /sessions/{id}`,
//! `DELETE /sessions` (every one but the current).
//!
//! Ending a session ends its refresh token and, through the session cache
//! (evicted on every instance before the answer), its access tokens at
//! once. Another user's session, an ended one and an id that is not a
//! UUID are all 404: the answer tells nothing about sessions that are not
//! the caller's.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

use crate::auth::audit::{self, Event, RequestContext};
use crate::auth::{AuthState, AuthUser};
use crate::domain::rfc3339;
use crate::error::{ApiError, Result};
use crate::storage::{self, sessions, sessions::EndReason};

/// One open session of the caller.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Session {
    pub id: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339; written at most once a minute per session, and at each
    /// refresh.
    pub last_used_at: String,
    /// RFC 3339: the session's absolute end.
    pub expires_at: String,
    /// The client address at login (after trusted proxies).
    pub ip: Option<String>,
    /// The `User-Agent` at login (at most 256 characters).
    pub user_agent: Option<String>,
    /// Whether this is the session of the token that asked.
    pub current: bool,
    /// How the session was authenticated (RFC 8176): `pwd`, and `otp` or
    /// `rc` once a second factor was used.
    pub amr: Vec<String>,
}

/// The list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Sessions {
    pub items: Vec<Session>,
}

/// The caller's open sessions, newest first.
#[utoipa::path(get, path = "/sessions", tag = "accounts", security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The caller's open sessions, newest first", body = Sessions),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_sessions(
    State(state): State<AuthState>,
    caller: AuthUser,
) -> Result<Json<Sessions>> {
    let rows = sessions::list_open(state.db.pool(), &caller.user.id, storage::now_ms()).await?;
    let items = rows
        .into_iter()
        .map(|row| Session {
            current: row.id == caller.claims.sid,
            id: row.id,
            created_at: rfc3339(row.created_at),
            last_used_at: rfc3339(row.last_used_at),
            expires_at: rfc3339(row.expires_at),
            ip: row.ip,
            user_agent: row.user_agent,
            amr: row
                .amr
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect(),
        })
        .collect();
    Ok(Json(Sessions { items }))
}

/// Ends one of the caller's sessions (the current one too: that is a
/// logout).
#[utoipa::path(delete, path = "/sessions/{session_id}", tag = "accounts", security(("bearer" = []), ("oauth2" = [])),
    params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No open session of the caller with this id", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn end_session(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
    Path(session_id): Path<String>,
) -> Result<StatusCode> {
    if uuid::Uuid::parse_str(&session_id).is_err() {
        return Err(ApiError::NotFound);
    }
    let user = &caller.user.id;
    let now = storage::now_ms();
    if !sessions::end_own(
        state.db.pool(),
        user,
        &session_id,
        EndReason::EndedByUser,
        now,
    )
    .await?
    {
        return Err(ApiError::NotFound);
    }
    state.sessions.invalidate(user).await;
    audit::record(
        &state.db,
        Event::SessionEnd,
        &ctx,
        Some(user),
        Some("one session"),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends every session of the caller except the current one.
#[utoipa::path(delete, path = "/sessions", tag = "accounts", security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Every other session ended"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn end_other_sessions(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
) -> Result<StatusCode> {
    let user = &caller.user.id;
    let now = storage::now_ms();
    let ended = sessions::end_all(
        state.db.pool(),
        user,
        Some(&caller.claims.sid),
        EndReason::EndedByUser,
        now,
    )
    .await?;
    if ended > 0 {
        state.sessions.invalidate(user).await;
        let detail = format!("{ended} other session(s)");
        audit::record(
            &state.db,
            Event::SessionEnd,
            &ctx,
            Some(user),
            Some(&detail),
        )
        .await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
