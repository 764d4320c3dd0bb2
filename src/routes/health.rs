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

/// The readiness answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok`, or `degraded` while a configured Redis is down (rate limits
    /// and the back-off are then counted in this process alone) or the
    /// gateway's upstream is.
    pub status: &'static str,
    pub checks: Checks,
}

/// Each dependency's state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Checks {
    /// `ok` (a 503 answers a database that is down).
    pub database: &'static str,
    /// `ok`, `down`, or `off` when no Redis is configured.
    pub redis: &'static str,
    /// Gateway mode: `ok` while the upstream application accepts
    /// connections, else `down` (Palisade's own routes still work: the
    /// status is `degraded`); `off` without a gateway.
    pub upstream: &'static str,
}

/// 200 when the database answers (`degraded` if Redis does not), else 503.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve, perhaps degraded", body = Readiness),
        (status = 503, description = "The database does not answer", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Json<Readiness>> {
    let redis = state
        .shared_limits
        .as_ref()
        .map_or("off", |store| store.state().as_str());
    let upstream = match &state.gateway {
        Some(gateway) if gateway.probe().await => "ok",
        Some(_) => "down",
        None => "off",
    };
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.db.ping()).await {
        Ok(Ok(())) => Ok(Json(Readiness {
            status: if redis == "down" || upstream == "down" {
                "degraded"
            } else {
                "ok"
            },
            checks: Checks {
                database: "ok",
                redis,
                upstream,
            },
        })),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            Err(ApiError::Unavailable("The database does not answer".into()))
        }
        Err(_) => Err(ApiError::Unavailable(
            "The database does not answer in time".into(),
        )),
    }
}
