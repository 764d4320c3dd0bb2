//! The request metrics middleware: a count and a duration per route
//! template (`/users/{user_id}`, never the path a client sent), method
//! and status class. A gateway request is labelled with its pattern
//! (`/app/*`). A path nothing matches is `unmatched`, so a scan of random
//! paths adds no series. Installed only when metrics are on.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};

use super::upstream::RouteLabel;
use axum::middleware::Next;
use axum::response::Response;

use crate::telemetry::prom;

/// The methods that get their own label; anything else is `other`.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The middleware.
pub async fn layer(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match (
        req.extensions().get::<MatchedPath>(),
        req.extensions().get::<RouteLabel>(),
    ) {
        (Some(path), _) => path.as_str().to_owned(),
        (None, Some(RouteLabel(pattern))) => pattern.to_string(),
        (None, None) => "unmatched".to_owned(),
    };
    let method = method_label(req.method());
    let response = next.run(req).await;
    let status = prom::status_class(response.status().as_u16());
    metrics::counter!(prom::REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(prom::REQUEST_DURATION, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
