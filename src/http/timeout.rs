//! Bounds the time a request may take. A request that runs out of time is
//! answered 503 with `Retry-After` (the server, not the client, was slow)
//! and its handler future is dropped.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The middleware.
pub async fn layer(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?limit, "request timed out");
            ApiError::Timeout.into_response()
        }
    }
}
