//! The caller's own account: `GET/PATCH /profile`,
//! `POST /profile/password`, `DELETE /account`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use crate::auth::api_key::{ProfileRead, Scoped};
use crate::auth::audit::{self, Event, RequestContext};
use crate::auth::notices::{self, Notice};
use crate::auth::reauth::confirm_password;
use crate::auth::{AuthState, AuthUser};
use crate::domain::password::Owner;
use crate::domain::{Name, Role, User, Username};
use crate::error::{ApiError, FieldError, Result};
use crate::http::extract::ApiJson;
use crate::storage::{self, sessions, sessions::EndReason, users};

/// The caller.
#[utoipa::path(get, path = "/profile", tag = "accounts", security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The caller", body = User),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_profile(caller: Scoped<ProfileRead>) -> Json<User> {
    Json(caller.user)
}

/// Fields the caller may change.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    pub username: Option<String>,
}

/// Changes the caller's name or username.
#[utoipa::path(patch, path = "/profile", tag = "accounts", security(("bearer" = []), ("oauth2" = [])),
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "The updated caller", body = User),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Username taken", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch_profile(
    State(state): State<AuthState>,
    caller: AuthUser,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> Result<Json<User>> {
    let mut errors = Vec::new();
    let name = patch
        .name
        .as_deref()
        .map(Name::parse)
        .transpose()
        .unwrap_or_else(|e| {
            errors.push(FieldError::new("name", e));
            None
        });
    let username = patch
        .username
        .as_deref()
        .map(Username::parse)
        .transpose()
        .unwrap_or_else(|e| {
            errors.push(FieldError::new("username", e));
            None
        });
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let pool = state.db.pool();
    let key = username.as_ref().map(Username::key);
    let renamed = username
        .as_ref()
        .zip(key.as_deref())
        .map(|(u, k)| (u.as_str(), k));
    match users::update_profile(
        pool,
        &caller.user.id,
        name.as_ref().map(Name::as_str),
        renamed,
        storage::now_ms(),
    )
    .await
    {
        Ok(()) => {}
        Err(e) if users::taken_by(&e).is_some() => {
            return Err(ApiError::Conflict(
                "An account with this username already exists".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    // The cached user (what `/profile` sends) changed.
    state.sessions.invalidate(&caller.user.id).await;
    let user = users::find_by_id(pool, &caller.user.id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(user))
}

/// A password change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange").finish_non_exhaustive()
    }
}

/// Changes the caller's password. Every other session ends; every access
/// token issued before the change stops working (the current session's
/// refresh token keeps working, so the client refreshes to go on).
#[utoipa::path(post, path = "/profile/password", tag = "accounts", security(("bearer" = []), ("oauth2" = [])),
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong current password or a weak new one", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn change_password(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
    ApiJson(body): ApiJson<PasswordChange>,
) -> Result<StatusCode> {
    let owner = Owner {
        username: &caller.user.username,
        email: &caller.user.email,
        name: &caller.user.name,
    };
    let new = state
        .passwords
        .check(&body.new_password, owner)
        .map_err(|e| ApiError::Validation(vec![FieldError::new("new_password", e)]))?;
    confirm_password(
        &state,
        &caller.user.id,
        &body.current_password,
        "current_password",
    )
    .await?;
    let hash = state.hasher.hash(new.expose().to_owned()).await?;
    let now = storage::now_ms();
    let pool = state.db.pool();
    users::set_password(pool, &caller.user.id, &hash, now).await?;
    sessions::end_all(
        pool,
        &caller.user.id,
        Some(&caller.claims.sid),
        EndReason::PasswordChanged,
        now,
    )
    .await?;
    state.sessions.invalidate(&caller.user.id).await;
    audit::record(
        &state.db,
        Event::PasswordChange,
        &ctx,
        Some(&caller.user.id),
        None,
    )
    .await?;
    notices::notify(&state, &caller.user, &Notice::PasswordChanged);
    Ok(StatusCode::NO_CONTENT)
}

/// Deletion needs the password again.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteAccount {
    pub password: String,
}

impl std::fmt::Debug for DeleteAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeleteAccount").finish_non_exhaustive()
    }
}

/// Deletes the caller's account, its sessions and its tokens. Security
/// events about it stay in the audit trail.
#[utoipa::path(delete, path = "/account", tag = "accounts", security(("bearer" = []), ("oauth2" = [])),
    request_body = DeleteAccount,
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Wrong password", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn delete_account(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
    ApiJson(body): ApiJson<DeleteAccount>,
) -> Result<StatusCode> {
    confirm_password(&state, &caller.user.id, &body.password, "password").await?;
    let now = storage::now_ms();
    let id = &caller.user.id;
    let mut tx = state.db.pool().begin().await?;
    users::lock(&mut *tx, id).await?;
    if caller.user.role == Role::SuperAdmin {
        // Returning drops the transaction, which rolls it back.
        if users::is_last_super_admin(&mut tx, id).await? {
            return Err(ApiError::Conflict(
                "The last super_admin cannot delete their account".into(),
            ));
        }
    }
    sessions::end_all(&mut *tx, id, None, EndReason::AccountDeleted, now).await?;
    users::delete(&mut *tx, id).await?;
    let row = audit::event(Event::AccountDelete, &ctx, Some(id), Some(id), None);
    crate::storage::events::insert(&mut *tx, &row, now).await?;
    tx.commit().await?;
    state.sessions.invalidate(id).await;
    Ok(StatusCode::NO_CONTENT)
}
