//! The one function that wraps a router in Palisade's hardened stack.
//!
//! Order, outermost first (a request passes down this list, its response
//! back up it):
//!
//! 1. sensitive headers: `Authorization`, `Proxy-Authorization`, `Cookie`
//!    and `Set-Cookie` are marked so that no log or `Debug` output can
//!    show them;
//! 2. request id: kept if sane, else new; echoed on every response;
//! 3. client IP: the peer, or the client behind trusted proxies;
//! 4. tracing: one span per request with its id, method, path and client;
//! 5. security headers: outside everything that can answer on its own, so
//!    413s, timeouts and panics carry them too;
//! 6. CORS: preflights are answered here; every other response, 413s,
//!    timeouts, panics and 429s included, carries the CORS headers so that
//!    a browser script on an allowed origin can read it;
//! 7. problem details: bare error responses become problem+json;
//! 8. `Host`: exactly one on HTTP/1.1, at most one otherwise, else 400;
//! 9. panic catcher: a panic becomes the generic 500, logged with its id;
//! 10. timeout;
//! 11. body size limit;
//! 12. rate limiting: on the matched route, before the handler (added to
//!     the router itself, see [`super::router`]).

use std::any::Any;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use http::header;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::SetSensitiveHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use super::client_ip::{self, ClientIp, ClientIpConfig};
use super::{cors, host, problem, request_id, security_headers, timeout};
use crate::error::Problem;
use crate::settings::Settings;

/// Wraps `router` in the stack, configured by `settings`.
pub fn apply<S>(router: Router<S>, settings: &Settings) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let client_ip = ClientIpConfig {
        trusted_proxies: settings.server.trusted_proxies.clone().into(),
        header: settings.server.forwarded_header,
        ipv6_prefix: settings.server.ipv6_prefix,
    };
    let headers: security_headers::SecurityHeaders = settings.headers.headers.clone().into();
    let trace = TraceLayer::new_for_http()
        .make_span_with(|req: &http::Request<_>| {
            let id = req
                .headers()
                .get(&request_id::X_REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let span = tracing::info_span!(
                "request",
                request_id = %id,
                method = %req.method(),
                path = %req.uri().path(),
                client = tracing::field::Empty,
            );
            // Recorded, and so formatted, only when the span is enabled.
            if let Some(c) = req.extensions().get::<ClientIp>() {
                span.record("client", tracing::field::display(c.addr));
            }
            span
        })
        .on_request(())
        .on_response(DefaultOnResponse::new().level(Level::INFO));

    let stack = ServiceBuilder::new()
        .layer(SetSensitiveHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
            header::SET_COOKIE,
            header::PROXY_AUTHORIZATION,
        ]))
        .layer(from_fn(request_id::layer))
        .layer(from_fn_with_state(client_ip, client_ip::layer))
        .layer(trace)
        .layer(from_fn_with_state(headers, security_headers::layer))
        .layer(cors::layer(&settings.cors))
        .layer(from_fn(problem::layer))
        .layer(from_fn(host::layer))
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(from_fn_with_state(
            settings.server.request_timeout,
            timeout::layer,
        ))
        .layer(RequestBodyLimitLayer::new(settings.server.body_limit))
        .layer(DefaultBodyLimit::max(settings.server.body_limit));
    router.layer(stack)
}

/// The panic's message goes to the log (under the request's span, so with
/// its id); the client gets the generic 500.
fn on_panic(payload: Box<dyn Any + Send + 'static>) -> Response {
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into());
    tracing::error!(panic = %message, "handler panicked");
    Problem::for_status(http::StatusCode::INTERNAL_SERVER_ERROR).into_response()
}
