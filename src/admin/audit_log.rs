//! `GET /audit-log`.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;

use super::{Page, Paging, invalid};
use crate::auth::api_key::{AuditRead, Scoped};
use crate::domain::AuditEvent;
use crate::error::{FieldError, Result};
use crate::http::extract::ApiQuery;
use crate::storage::{Db, events};

/// `GET /audit-log` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub page: Option<i64>,
    pub limit: Option<i64>,
    /// Events about or by this user.
    pub user_id: Option<String>,
    /// One kind of event, e.g. `login_failure`.
    pub event: Option<String>,
}

/// The audit trail, newest first.
#[utoipa::path(get, path = "/audit-log", tag = "admin", security(("bearer" = []), ("oauth2" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of events", body = Page<AuditEvent>),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad paging or filter", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn audit_log(
    State(db): State<Db>,
    _admin: Scoped<AuditRead>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Page<AuditEvent>>> {
    let mut errors = Vec::new();
    let paging = Paging::parse(query.page, query.limit, &mut errors);
    if query
        .user_id
        .as_ref()
        .is_some_and(|u| u.chars().count() > 64)
    {
        errors.push(FieldError::new("user_id", "must be at most 64 characters"));
    }
    if query.event.as_ref().is_some_and(|e| e.chars().count() > 64) {
        errors.push(FieldError::new("event", "must be at most 64 characters"));
    }
    invalid(errors)?;
    let pool = db.pool();
    let (user, event) = (query.user_id.as_deref(), query.event.as_deref());
    let items = events::list(pool, user, event, paging.limit, paging.offset()).await?;
    let total = events::count(pool, user, event).await?;
    Ok(Json(Page {
        items,
        page: paging.page,
        limit: paging.limit,
        total,
    }))
}
