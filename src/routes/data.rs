//! The seed's rate-limited sample resource.

use axum::Json;
use serde::Serialize;

/// The sample payload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Data {
    /// Always `limited`.
    pub data: &'static str,
    /// Always `ok`.
    pub status: &'static str,
}

/// A cheap resource limited to 10 requests a minute per client address by
/// default (policy `data`).
#[utoipa::path(get, path = "/api/data", tag = "samples",
    responses(
        (status = 200, description = "The sample payload", body = Data),
        (status = 429, description = "Rate limited", body = crate::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn get_data() -> Json<Data> {
    Json(Data {
        data: "limited",
        status: "ok",
    })
}
