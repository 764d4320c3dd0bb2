//! CORS from the validated allowlist: exact origins only (or `*` without
//! credentials), the configured methods and headers, and the rate-limit and
//! request-id headers exposed to scripts.

use http::HeaderName;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::settings::{AllowedOrigins, CorsSettings};

/// Response headers a browser script may read.
pub const EXPOSED: &[&str] = &[
    "x-request-id",
    "ratelimit",
    "ratelimit-policy",
    "retry-after",
];

/// The CORS layer for `settings`.
pub fn layer(settings: &CorsSettings) -> CorsLayer {
    let origin = match &settings.allowed_origins {
        AllowedOrigins::Any => AllowOrigin::any(),
        AllowedOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    CorsLayer::new()
        .allow_origin(origin)
        .allow_methods(settings.allowed_methods.clone())
        .allow_headers(settings.allowed_headers.clone())
        .allow_credentials(settings.allow_credentials)
        .max_age(settings.max_age)
        .expose_headers(
            EXPOSED
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect::<Vec<_>>(),
        )
}
