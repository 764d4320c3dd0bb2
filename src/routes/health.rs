//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::error::{ApiError, Result};
use crate::state::AppState;

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
pub async fn ready(State(state): State<AppState>) -> Result<Json<Health>> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => Ok(Json(Health { status: "ok" })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Err(ApiError::Unavailable("The database does not answer".into()))
        }
        Err(_) => Err(ApiError::Unavailable(
            "The database does not answer in time".into(),
        )),
    }
}
