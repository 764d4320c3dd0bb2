//! `GET /.well-known/jwks.json` (RFC 7517) and
//! `GET /.well-known/oauth-authorization-server` (RFC 8414): what another
//! service needs to verify Palisade's access tokens without sharing a
//! secret, and to find its endpoints.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use super::routes::MFA_OTP_GRANT;
use crate::auth::AuthState;
use crate::settings::Settings;

/// How long clients may cache both documents. A rotated key is published
/// `auth.signing_key_publish_delay` (10 minutes by default) before it
/// signs, longer than this.
pub const CACHE_CONTROL: &str = "public, max-age=300";

/// A JSON Web Key Set.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Jwks {
    /// The public keys (`kty`, `crv`, `x`, `y` for P-256, `kid`, `alg`,
    /// `use`); never a private member. Empty with HS256 unless the
    /// gateway's identity keys are published.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<Value>,
}

/// The public keys that may verify a live access token: the current
/// signing key, a rotated-in key before it signs, and retired keys until
/// every token they signed has expired (none with HS256); in gateway mode
/// also the Ed25519 keys of the identities sent to the upstream.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth",
    responses((status = 200, description = "The key set (RFC 7517)", body = Jwks)))]
pub async fn jwks(State(state): State<AuthState>) -> Response {
    let now = crate::storage::now_ms();
    let keys = state
        .tokens
        .key_set()
        .into_iter()
        .chain(&state.identity_keys)
        .flat_map(|set| set.jwks(now))
        .collect();
    cached(Json(Jwks { keys }))
}

/// RFC 8414 authorization server metadata.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Metadata {
    /// `auth.issuer`: the `iss` of every access token.
    pub issuer: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub jwks_uri: String,
    /// None: there is no authorization endpoint.
    pub response_types_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    /// `none`: clients are public; the password grant authenticates the user.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// The algorithm access tokens are signed with.
    pub access_token_signing_alg_values_supported: Vec<&'static str>,
    /// The OpenAPI description, when `server.docs` is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
}

/// Where this authorization server's endpoints are (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "auth",
    responses((status = 200, description = "Authorization server metadata (RFC 8414)", body = Metadata)))]
pub async fn metadata(State(state): State<AuthState>) -> Response {
    let base = public_base(&state.settings);
    cached(Json(Metadata {
        issuer: state.settings.auth.issuer.clone(),
        token_endpoint: format!("{base}/auth/token"),
        revocation_endpoint: format!("{base}/auth/revoke"),
        jwks_uri: format!("{base}/.well-known/jwks.json"),
        response_types_supported: Vec::new(),
        grant_types_supported: vec!["password", "refresh_token", MFA_OTP_GRANT],
        token_endpoint_auth_methods_supported: vec!["none"],
        revocation_endpoint_auth_methods_supported: vec!["none"],
        access_token_signing_alg_values_supported: vec![state.settings.auth.jwt_algorithm.as_str()],
        service_documentation: state.settings.server.docs.then(|| format!("{base}/docs")),
    }))
}

/// The base of the endpoint URLs: `server.public_url`; else `auth.issuer`
/// when it is an http(s) URL; else the listen address.
pub fn public_base(settings: &Settings) -> String {
    if let Some(url) = &settings.server.public_url {
        return url.clone();
    }
    let issuer = settings.auth.issuer.trim_end_matches('/');
    if issuer.starts_with("https://") || issuer.starts_with("http://") {
        return issuer.to_owned();
    }
    let scheme = if settings.server.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{}", settings.server.bind)
}

fn cached(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}
