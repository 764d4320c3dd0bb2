//! `POST /api-keys`, `GET /api-keys`, `DELETE /api-keys/{id}`: the
//! caller's API keys. Only an access token manages keys ([`AuthUser`]
//! refuses keys), so a key can never make, list or delete keys.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::api_key::{self, Scope};
use crate::auth::audit::{self, Event, RequestContext};
use crate::auth::{AuthState, AuthUser};
use crate::domain::rfc3339;
use crate::error::{ApiError, FieldError, Result};
use crate::http::extract::ApiJson;
use crate::storage::{self, api_keys};

/// Keys one user may have.
pub const MAX_KEYS: i64 = 50;
/// Longest life of a key, and the default.
pub const MAX_DAYS: i64 = 365;
pub const DEFAULT_DAYS: i64 = 90;

/// `POST /api-keys`'s body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// 1 to 100 characters, to tell keys apart.
    pub name: String,
    /// At least one of `profile:read`, `ai:generate`, `data:read`,
    /// `users:read`, `audit:read` (the last two need the admin role).
    pub scopes: Vec<String>,
    /// 1 to 365 (default 90).
    pub expires_in_days: Option<i64>,
}

/// An API key as its owner sees it; `key` only in the answer that made it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The whole key: shown once, never stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The key's first characters, to recognise it.
    pub prefix: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub expires_at: String,
    pub last_used_at: Option<String>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The caller's keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeys {
    pub items: Vec<ApiKey>,
}

fn shown(row: api_keys::KeyRow, key: Option<String>) -> ApiKey {
    ApiKey {
        id: row.id,
        name: row.name,
        key,
        prefix: row.prefix,
        scopes: row.scopes.split(',').map(str::to_owned).collect(),
        created_at: rfc3339(row.created_at),
        expires_at: rfc3339(row.expires_at),
        last_used_at: row.last_used_at.map(rfc3339),
    }
}

/// Makes a key; the answer holds the key, once.
#[utoipa::path(post, path = "/api-keys", tag = "api-keys", security(("bearer" = []), ("oauth2" = [])),
    request_body = NewApiKey,
    responses(
        (status = 201, description = "The key, shown once", body = ApiKey),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API key", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too many keys", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn create(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
    ApiJson(body): ApiJson<NewApiKey>,
) -> Result<(StatusCode, Json<ApiKey>)> {
    let user = &caller.user;
    let mut errors = Vec::new();
    let name = body.name.trim();
    if !(1..=100).contains(&name.chars().count()) {
        errors.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let mut scopes = Vec::new();
    for text in &body.scopes {
        match Scope::parse(text) {
            Some(scope) if scope.min_role() > user.role => errors.push(FieldError::new(
                "scopes",
                format!("{text} needs the {} role", scope.min_role()),
            )),
            Some(scope) => scopes.push(scope),
            None => errors.push(FieldError::new("scopes", format!("unknown scope {text:?}"))),
        }
    }
    scopes.sort_unstable();
    scopes.dedup();
    if body.scopes.is_empty() {
        errors.push(FieldError::new("scopes", "name at least one scope"));
    }
    let days = body.expires_in_days.unwrap_or(DEFAULT_DAYS);
    if !(1..=MAX_DAYS).contains(&days) {
        errors.push(FieldError::new("expires_in_days", "must be 1 to 365"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let pool = state.db.pool();
    if api_keys::count(pool, &user.id).await? >= MAX_KEYS {
        return Err(ApiError::Conflict(format!(
            "A user may have at most {MAX_KEYS} keys; delete one first"
        )));
    }
    let (key, digest, prefix) = api_key::generate()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    let now = storage::now_ms();
    let scope_text: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
    let row = api_keys::KeyRow {
        id: storage::new_id(),
        name: name.to_owned(),
        prefix,
        scopes: scope_text.join(","),
        created_at: now,
        expires_at: now + days * 24 * 3600 * 1000,
        last_used_at: None,
    };
    api_keys::insert(
        pool,
        &api_keys::NewKey {
            id: &row.id,
            user_id: &user.id,
            name: &row.name,
            key_hash: &digest,
            prefix: &row.prefix,
            scopes: &row.scopes,
            created_at: row.created_at,
            expires_at: row.expires_at,
        },
    )
    .await?;
    let detail = format!("{} ({})", row.prefix, row.scopes);
    audit::record(
        &state.db,
        Event::ApiKeyCreated,
        &ctx,
        Some(&user.id),
        Some(&detail),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(shown(row, Some(key)))))
}

/// The caller's keys, newest first, without the keys themselves.
#[utoipa::path(get, path = "/api-keys", tag = "api-keys", security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 200, description = "The caller's keys", body = ApiKeys),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API key", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(State(state): State<AuthState>, caller: AuthUser) -> Result<Json<ApiKeys>> {
    let rows = api_keys::list(state.db.pool(), &caller.user.id).await?;
    Ok(Json(ApiKeys {
        items: rows.into_iter().map(|r| shown(r, None)).collect(),
    }))
}

/// Deletes one of the caller's keys: it stops working at once.
#[utoipa::path(delete, path = "/api-keys/{key_id}", tag = "api-keys", security(("bearer" = []), ("oauth2" = [])),
    params(("key_id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Called with an API key", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key of the caller's", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AuthState>,
    ctx: RequestContext,
    caller: AuthUser,
    Path(key_id): Path<String>,
) -> Result<StatusCode> {
    // Ids are UUIDs: anything else (a NUL, which PostgreSQL cannot even
    // compare) names no key.
    if uuid::Uuid::parse_str(&key_id).is_err()
        || !api_keys::delete(state.db.pool(), &caller.user.id, &key_id).await?
    {
        return Err(ApiError::NotFound);
    }
    audit::record(
        &state.db,
        Event::ApiKeyDeleted,
        &ctx,
        Some(&caller.user.id),
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
