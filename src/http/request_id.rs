//! Request ids: a sane incoming `X-Request-Id` is kept, anything else is
//! replaced by a new UUID v7. The id is echoed on every response, stored in
//! the request's extensions, and visible to the code that renders errors
//! through [`crate::error::current_request_id`].

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue};

use crate::error::with_request_id;

/// The header that carries the id.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// 1 to 64 characters of letters, digits, `-`, `_`, `.` and `:` are kept;
/// anything else could forge log lines or carry a payload, so it is replaced.
fn is_sane(value: &HeaderValue) -> bool {
    let bytes = value.as_bytes();
    (1..=64).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The middleware.
pub async fn layer(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .filter(|v| is_sane(v))
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::try_from(uuid::Uuid::now_v7().to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("invalid"))
        });
    req.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = with_request_id(id.clone(), next.run(req)).await;
    response.headers_mut().insert(X_REQUEST_ID.clone(), id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_are_sane() {
        for ok in [
            "abc",
            "0195f3b2-7c1e-7d4a-9b7e-2f1c3d4e5f60",
            "req_42.retry:1",
        ] {
            assert!(is_sane(&HeaderValue::from_static(ok)), "{ok}");
        }
    }

    #[test]
    fn ids_with_spaces_quotes_or_excess_length_are_replaced() {
        let long = "a".repeat(65);
        for bad in ["", "a b", "x\"y", "<script>", "a\tb", long.as_str()] {
            let v = HeaderValue::from_str(bad).unwrap();
            assert!(!is_sane(&v), "{bad:?}");
        }
    }
}
