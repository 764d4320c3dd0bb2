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
        (name = "accounts", description = "Registration, the caller's own account and sessions, email verification, password reset"),
        (name = "api-keys", description = "The caller's API keys for machine clients"),
        (name = "mfa", description = "The caller's second factor: TOTP (RFC 6238) and recovery codes"),
        (name = "admin", description = "User administration and the audit log (admin, super_admin)"),
        (name = "operations", description = "Health probes"),
        (name = "samples", description = "Rate-limit showcase resources"),
    )
)]
pub struct ApiDoc;

/// `bearer` (a JWT in `Authorization`) and `oauth2` (the password flow of
/// `/auth/token`, which Swagger UI's Authorize button drives, pointing at
/// the endpoints the discovery document names).
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
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::Password(Password::with_refresh_url(
                    "/auth/token",
                    Scopes::new(),
                    "/auth/token",
                ))],
                "OAuth2 password grant and refresh at `/auth/token`, revocation at `/auth/revoke`; the same endpoints are in the RFC 8414 metadata at `/.well-known/oauth-authorization-server`, the token-verification keys at `/.well-known/jwks.json`.",
            )),
        );
    }
}

/// Documents on every operation the statuses the stack and the extractors
/// can answer whatever the handler (so that a client, or a contract tester
/// such as schemathesis, meets no undocumented status): 400 (a malformed
/// request, a NUL in a parameter, a missing or repeated `Host`), 429 (the
/// rate limits), 503 (the request timeout, a database or limiter that does
/// not answer); and, on operations that take a body, 413 (too large) and
/// 415 (not the declared media type). A status an operation documents
/// itself is kept as it is.
pub fn document_common_responses(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
    };
    let common = [
        (
            "400",
            "Malformed request (syntax, a NUL character, a missing or repeated Host)",
        ),
        ("429", "Rate limited; see Retry-After and RateLimit"),
        (
            "503",
            "Timed out, or a dependency is unavailable; try again",
        ),
    ];
    let with_body = [
        ("413", "Request body too large"),
        ("415", "Request body is not of the declared media type"),
    ];
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let body = operation.request_body.is_some();
            let responses = &mut operation.responses.responses;
            for (status, description) in common.iter().chain(with_body.iter().filter(|_| body)) {
                responses
                    .entry((*status).to_owned())
                    .or_insert_with(|| problem(description).into());
            }
        }
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
