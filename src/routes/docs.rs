//! The OpenAPI document at `/openapi.json` and Swagger UI at `/docs`,
//! served from the binary (the vendored Swagger UI assets), with the
//! narrowest Content-Security-Policy under which Swagger UI runs.

use axum::Json;
use axum::Router;
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::get;
use http::{HeaderValue, header};
use utoipa::OpenApi;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::error::{FieldError, Problem};

/// Routes these add, as the rate-limit table names them.
pub const ROUTES: &[&str] = &[
    "GET /openapi.json",
    "GET /docs",
    "GET /docs/",
    "GET /docs/{*rest}",
];

/// Scripts, styles and images only from this server (Swagger UI's icons
/// are `data:` URIs and it styles some elements inline), requests only to
/// this server, and never inside a frame.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// The root of the document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Palisade",
        description = "A secure-by-default API server: accounts, OAuth2 password login, JWT access tokens, rotating refresh tokens, rate limits."
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "OAuth2 password login, refresh, revocation, logout"),
        (name = "accounts", description = "Registration and the caller's own account"),
        (name = "admin", description = "User administration and the audit log (admin, super_admin)"),
        (name = "operations", description = "Health probes"),
        (name = "samples", description = "Rate-limit showcase resources"),
    )
)]
pub struct ApiDoc;

/// `bearer` (a JWT in `Authorization`) and `oauth2` (the password flow of
/// `/auth/token`, which Swagger UI's Authorize button drives).
#[derive(Debug)]
struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/auth/token",
                Scopes::new(),
            ))])),
        );
    }
}

/// `/openapi.json` and the Swagger UI.
pub fn router<S: Clone + Send + Sync + 'static>(openapi: utoipa::openapi::OpenApi) -> Router<S> {
    let json = serde_json::to_value(&openapi).unwrap_or_default();
    let ui: Router<S> = SwaggerUi::new("/docs")
        .config(Config::from("/openapi.json"))
        .into();
    Router::new()
        .route(
            "/openapi.json",
            get(move || std::future::ready(Json(json.clone()))),
        )
        .merge(ui.layer(map_response(docs_csp)))
}

async fn docs_csp(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(DOCS_CSP),
    );
    response
}
