//! Exactly one `Host` on HTTP/1.1 (RFC 9112 §3.2: "A server MUST respond
//! with a 400 (Bad Request) status code to any HTTP/1.1 request message
//! that lacks a Host header field and to any request message that contains
//! more than one Host header field line"). hyper accepts both; this layer
//! answers them with a 400 problem that carries the request id and the
//! security headers like any other. HTTP/1.0 may omit `Host`, never repeat
//! it.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{Version, header};

use crate::error::ApiError;

/// The middleware.
pub async fn layer(req: Request, next: Next) -> Response {
    let hosts = req.headers().get_all(header::HOST).iter().count();
    let refused = match (req.version(), hosts) {
        (_, 2..) => Some("A request may carry only one Host header"),
        (Version::HTTP_11, 0) => Some("An HTTP/1.1 request must carry a Host header"),
        _ => None,
    };
    match refused {
        Some(why) => ApiError::BadRequest(why.into()).into_response(),
        None => next.run(req).await,
    }
}
