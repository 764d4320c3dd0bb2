//! HTTP plumbing that knows nothing about users or databases: the layer
//! stack, client addresses, request ids, problem details, extractors.
//! [`router`] assembles Palisade's application from the domain routes and
//! this stack.

pub mod client_ip;
pub mod cors;
pub mod extract;
pub mod forwarded;
pub mod problem;
pub mod request_id;
pub mod security_headers;
pub mod stack;
pub mod timeout;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;

use crate::error::ApiError;
use crate::ratelimit;
use crate::routes;
use crate::state::AppState;

/// The whole application: every route, the rate limiter on every route and
/// on the 404 fallback, and the hardened stack around it all.
pub fn router(state: AppState) -> Router {
    let settings = Arc::clone(&state.settings);
    let (api, openapi) = routes::api().split_for_parts();
    let mut app = api;
    if settings.server.docs {
        app = app.merge(routes::docs::router(openapi));
    }
    let app = app
        .fallback(|| async { ApiError::NotFound })
        .layer(from_fn_with_state(
            Arc::clone(&state.limiter),
            ratelimit::layer::layer,
        ))
        .with_state(state);
    stack::apply(app, &settings)
}
