//! Stamps the configured security headers on every response, including the
//! ones produced by outer layers (413, timeouts, panics). A header the
//! handler already set is kept, which is how `/docs` gets its own
//! Content-Security-Policy. Any `Server` banner is removed.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue, header};

/// The rendered header list, shared by every request.
pub type SecurityHeaders = Arc<[(HeaderName, HeaderValue)]>;

/// The middleware.
pub async fn layer(State(list): State<SecurityHeaders>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    for (name, value) in list.iter() {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
    headers.remove(header::SERVER);
    headers.remove("x-powered-by");
    response
}
