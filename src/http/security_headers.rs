//! Stamps the configured security headers on every response, including the
//! ones produced by outer layers (413, timeouts, panics). A header the
//! handler already set is kept, which is how `/docs` gets its own
//! Content-Security-Policy. Any `Server` banner is removed.
//!
//! `Strict-Transport-Security` is left off only when a trusted proxy says
//! the client came over plain HTTP (RFC 6797 §7.2: not over an insecure
//! transport). Over native TLS it is always sent; on a plain connection
//! with no such claim it is sent too, since a proxy in front may terminate
//! TLS without saying so, and browsers ignore it over plain HTTP anyway.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue, header};

use super::client_ip::ClientIp;

/// The rendered header list, shared by every request.
pub type SecurityHeaders = Arc<[(HeaderName, HeaderValue)]>;

/// The middleware.
pub async fn layer(State(list): State<SecurityHeaders>, req: Request, next: Next) -> Response {
    let plain_http = req
        .extensions()
        .get::<ClientIp>()
        .is_some_and(|client| client.plain_http);
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in list.iter() {
        if plain_http && name == header::STRICT_TRANSPORT_SECURITY {
            continue;
        }
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.remove(header::SERVER);
    headers.remove("x-powered-by");
    response
}
