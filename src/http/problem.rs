//! Turns every bare error response (no JSON body: a 404 or 405 from the
//! router, a 413 from the body limit, a 500 from anywhere) into problem
//! details, so that clients see one error shape whatever produced it.
//! JSON error bodies are left alone (they are problem details already, or
//! the token endpoint's RFC 6749 errors), except a 500 that is not
//! problem+json: that is replaced by the generic one. (Palisade's own 500s
//! are problem+json and say only "An internal error occurred".)

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::header;

use crate::error::Problem;

/// The middleware.
pub async fn layer(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or((false, false), |ct| {
            (
                ct.starts_with("application/json"),
                ct.starts_with(crate::error::PROBLEM_JSON),
            )
        });
    // A 500 must never say more than the generic text: only a problem
    // body (ours says exactly that) passes.
    let keep = match is_json {
        (_, true) => true,
        (true, false) => status != http::StatusCode::INTERNAL_SERVER_ERROR,
        (false, false) => false,
    };
    // An upstream application's own error answers pass (gateway mode),
    // except a 500 that is not problem+json.
    let upstream = response
        .extensions()
        .get::<super::upstream::FromUpstream>()
        .is_some()
        && status != http::StatusCode::INTERNAL_SERVER_ERROR;
    if keep || upstream {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let rendered = Problem::for_status(status).into_response();
    let (new_parts, body) = rendered.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    // The new body is not the old one's encoding (an upstream's gzip).
    parts.headers.remove(header::CONTENT_ENCODING);
    for (name, value) in &new_parts.headers {
        parts.headers.insert(name.clone(), value.clone());
    }
    Response::from_parts(parts, body)
}
