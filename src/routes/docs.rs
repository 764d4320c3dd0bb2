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
            let body = operation.request_body.as_ref();
            // The OAuth endpoints answer any other media type with their
            // own 400 `invalid_request` (RFC 6749 §5.2), not a 415.
            let form_only = body.is_some_and(|b| match b {
                utoipa::openapi::RefOr::T(b) => b
                    .content
                    .keys()
                    .all(|media| media == "application/x-www-form-urlencoded"),
                utoipa::openapi::RefOr::Ref(_) => false,
            });
            let responses = &mut operation.responses.responses;
            let extra = with_body
                .iter()
                .filter(|(status, _)| body.is_some() && !(form_only && *status == "415"));
            for (status, description) in common.iter().chain(extra) {
                responses
                    .entry((*status).to_owned())
                    .or_insert_with(|| problem(description).into());
            }
            for (status, response) in responses.iter_mut() {
                if let utoipa::openapi::RefOr::T(response) = response {
                    // A route's own 400 (e.g. `/auth/login`'s OAuth-style
                    // one) does not stop the stack's problem 400 for a
                    // malformed body: both media types are possible.
                    if status == "400"
                        && !form_only
                        && !response.content.contains_key("application/problem+json")
                    {
                        response.content.insert(
                            "application/problem+json".to_owned(),
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Problem")))
                                .build()
                                .into(),
                        );
                    }
                    document_headers(status, response);
                }
            }
        }
    }
    header_components(openapi);
    document_formats(openapi);
}

/// The response headers, described once under `components/headers`.
const HEADERS: &[(&str, &str)] = &[
    (
        "X-Request-Id",
        "The request's id: the client's, if it sent a sane one, else a new UUID v7. On every response.",
    ),
    (
        "RateLimit",
        "The remaining quota of the route's policy (draft-ietf-httpapi-ratelimit-headers), e.g. `\"default\";r=119;t=1`. Sent while rate limiting is on.",
    ),
    (
        "RateLimit-Policy",
        "The route's policy, e.g. `\"default\";q=120;w=60`. Sent while rate limiting is on.",
    ),
    (
        "WWW-Authenticate",
        "`Bearer`, with `error=\"invalid_token\"` when a token was presented (RFC 6750 §3).",
    ),
    ("Retry-After", "Seconds until a request may succeed."),
];

/// Registers [`HEADERS`] as components.
fn header_components(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::{ObjectBuilder, RefOr, Type};
    let components = openapi.components.get_or_insert_with(Default::default);
    for (name, description) in HEADERS {
        let header = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(*description))
            .build();
        components
            .headers
            .insert((*name).to_owned(), RefOr::T(header));
    }
}

/// The headers every response carries, and those of 401 and 429, as
/// references to [`header_components`].
fn document_headers(status: &str, response: &mut utoipa::openapi::Response) {
    use utoipa::openapi::{Ref, RefOr};
    let mut add = |name: &str| {
        response
            .headers
            .entry(name.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/headers/{name}"))));
    };
    add("X-Request-Id");
    add("RateLimit");
    add("RateLimit-Policy");
    match status {
        "401" => add("WWW-Authenticate"),
        "429" => add("Retry-After"),
        _ => {}
    }
}

/// `format`s the derived schemas cannot state: ids are UUIDs and `at`,
/// `*_at` times RFC 3339 strings. Not UUIDs: `Problem.request_id` and
/// `AuditEvent.request_id` (a client's own request id is kept) and
/// `AuditEvent.actor_id` (`cli` for operator commands).
fn document_formats(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat};
    let Some(components) = openapi.components.as_mut() else {
        return;
    };
    for schema in components.schemas.values_mut() {
        let RefOr::T(Schema::Object(object)) = schema else {
            continue;
        };
        for (name, property) in &mut object.properties {
            let RefOr::T(Schema::Object(property)) = property else {
                continue;
            };
            let format = if name == "id"
                || (name.ends_with("_id") && !matches!(name.as_str(), "request_id" | "actor_id"))
            {
                KnownFormat::Uuid
            } else if name == "at" || name.ends_with("_at") {
                KnownFormat::DateTime
            } else {
                continue;
            };
            if property.format.is_none() {
                property.format = Some(SchemaFormat::KnownFormat(format));
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
