//! `GET /users`, `GET/PATCH/DELETE /users/{user_id}`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::change::{self, Actor};
use super::rules::Action;
use super::{Page, Paging, UserPatch, invalid};
use crate::auth::AdminUser;
use crate::auth::api_key::{Scoped, UsersRead};
use crate::auth::audit::RequestContext;
use crate::cache::SessionCache;
use crate::domain::{Role, User};
use crate::error::{ApiError, FieldError, Result};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::storage::{Db, users};

/// `GET /users` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 or more (default 1).
    pub page: Option<i64>,
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// Case-insensitive literal substring of email, username or name (at
    /// most 100 characters; `%`, `_` and `\` match themselves).
    pub search: Option<String>,
}

/// Lists users, oldest first.
#[utoipa::path(get, path = "/users", tag = "admin", security(("bearer" = []), ("oauth2" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of users", body = Page<User>),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad paging or search", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list_users(
    State(db): State<Db>,
    _admin: Scoped<UsersRead>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Page<User>>> {
    let mut errors = Vec::new();
    let paging = Paging::parse(query.page, query.limit, &mut errors);
    if query
        .search
        .as_ref()
        .is_some_and(|s| s.chars().count() > 100)
    {
        errors.push(FieldError::new("search", "must be at most 100 characters"));
    }
    invalid(errors)?;
    let pattern = query
        .search
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(users::like_pattern);
    let pool = db.pool();
    let rows = users::list(pool, pattern.as_deref(), paging.limit, paging.offset()).await?;
    let total = users::count(pool, pattern.as_deref()).await?;
    Ok(Json(Page {
        items: rows,
        page: paging.page,
        limit: paging.limit,
        total,
    }))
}

/// The user, or 404 (also for an id that is not a UUID: the format of ids
/// is nobody's business).
async fn target(db: &Db, id: &str) -> Result<User> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ApiError::NotFound);
    }
    users::find_by_id(db.pool(), id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// One user.
#[utoipa::path(get, path = "/users/{user_id}", tag = "admin", security(("bearer" = []), ("oauth2" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_user(
    State(db): State<Db>,
    _admin: Scoped<UsersRead>,
    Path(user_id): Path<String>,
) -> Result<Json<User>> {
    Ok(Json(target(&db, &user_id).await?))
}

/// Changes a user's role or disabled flag. A changed role or a disabling
/// ends the user's sessions at once.
#[utoipa::path(patch, path = "/users/{user_id}", tag = "admin", security(("bearer" = []), ("oauth2" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The updated user", body = User),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed on this user or role", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last super_admin", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn patch_user(
    State(db): State<Db>,
    State(sessions): State<SessionCache>,
    ctx: RequestContext,
    admin: AdminUser,
    Path(user_id): Path<String>,
    ApiJson(patch): ApiJson<UserPatch>,
) -> Result<Json<User>> {
    let role = match patch.role.as_deref().map(str::parse::<Role>).transpose() {
        Ok(role) => role,
        Err(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "role",
                "is not a role",
            )]));
        }
    };
    if role.is_none() && patch.disabled.is_none() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "",
            "name role or disabled",
        )]));
    }
    let target = target(&db, &user_id).await?;
    let action = Action::Update {
        role,
        disabled: patch.disabled,
    };
    let admin_id = &admin.caller.user.id;
    let after = change::apply(
        &db,
        &sessions,
        &ctx,
        Actor::User(admin_id),
        &target.id,
        action,
    )
    .await?;
    Ok(Json(after.ok_or(ApiError::NotFound)?))
}

/// Deletes a user, its sessions and its tokens.
#[utoipa::path(delete, path = "/users/{user_id}", tag = "admin", security(("bearer" = []), ("oauth2" = [])),
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed on this user", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last super_admin", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn delete_user(
    State(db): State<Db>,
    State(sessions): State<SessionCache>,
    ctx: RequestContext,
    admin: AdminUser,
    Path(user_id): Path<String>,
) -> Result<StatusCode> {
    let target = target(&db, &user_id).await?;
    let admin_id = &admin.caller.user.id;
    change::apply(
        &db,
        &sessions,
        &ctx,
        Actor::User(admin_id),
        &target.id,
        Action::Delete,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
