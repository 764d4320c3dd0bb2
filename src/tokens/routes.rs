//! `POST /auth/token` (RFC 6749 §4.3 and §6), `POST /auth/login`,
//! `POST /auth/revoke` (RFC 7009) and `POST /auth/logout`.
//!
//! The token endpoint answers its errors in the RFC 6749 §5.2 shape
//! (`{"error", "error_description"}`), as OAuth clients expect; every
//! other route here answers problem details.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{GrantError, TokenResponse};
use crate::auth::audit::{self, Event, RequestContext};
use crate::auth::{AuthState, EnrollingUser};
use crate::error::ApiError;
use crate::http::client_ip::ClientIp;
use crate::http::extract::ApiJson;
use crate::storage::{self, sessions, sessions::EndReason};

/// Longest username or password the login paths will look at.
const MAX_FIELD: usize = 1024;

/// An RFC 6749 §5.2 error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OAuthError {
    #[schema(value_type = OAuthErrorCode)]
    pub error: &'static str,
    pub error_description: String,
}

/// The `error` codes the token and revocation endpoints answer (the
/// document's enumeration of `OAuthError.error`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidGrant,
    UnsupportedGrantType,
    InvalidScope,
}

/// `mfa_required` (the document's constant for `MfaRequired.error`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MfaRequiredCode {
    MfaRequired,
}

/// The 403 of a right password on an account with a second factor.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MfaRequired {
    #[schema(value_type = MfaRequiredCode)]
    pub error: &'static str,
    pub error_description: &'static str,
    /// Opaque, single use once it succeeds, valid 5 minutes, dead after 5
    /// wrong codes: send it with a code to the mfa-otp grant or
    /// `POST /auth/login/mfa`.
    pub mfa_token: String,
}

impl std::fmt::Debug for MfaRequired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaRequired").finish_non_exhaustive()
    }
}

/// The grant type of the second step of a login with a second factor.
pub const MFA_OTP_GRANT: &str = "urn:palisade:params:oauth:grant-type:mfa-otp";

/// The token endpoint's form, one shape per `grant_type` (documentation
/// of the wire format; the handler reads the form itself). A `scope` other
/// than empty is refused with `invalid_scope`: no scopes are defined.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(tag = "grant_type")]
pub enum TokenForm {
    /// RFC 6749 §4.3: `username` is the username or the email.
    #[serde(rename = "password")]
    Password {
        username: String,
        password: String,
        #[schema(nullable = false)]
        scope: Option<String>,
    },
    /// RFC 6749 §6.
    #[serde(rename = "refresh_token")]
    RefreshToken {
        refresh_token: String,
        #[schema(nullable = false)]
        scope: Option<String>,
    },
    /// The second step of a login with a second factor: the `mfa_token` of
    /// the 403 `mfa_required` answer and a TOTP or recovery code.
    #[serde(rename = "urn:palisade:params:oauth:grant-type:mfa-otp")]
    MfaOtp { mfa_token: String, otp: String },
}

impl std::fmt::Debug for TokenForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenForm").finish_non_exhaustive()
    }
}

/// `POST /auth/login/mfa`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MfaLoginBody {
    pub mfa_token: String,
    /// A TOTP code or a recovery code.
    pub otp: String,
}

impl std::fmt::Debug for MfaLoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaLoginBody").finish_non_exhaustive()
    }
}

/// `POST /auth/revoke`'s form.
#[derive(Deserialize, utoipa::ToSchema)]
pub struct RevokeForm {
    pub token: String,
    /// `refresh_token` or `access_token`; both are recognised either way.
    #[schema(nullable = false)]
    pub token_type_hint: Option<String>,
}

impl std::fmt::Debug for RevokeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevokeForm")
            .field("token_type_hint", &self.token_type_hint)
            .finish_non_exhaustive()
    }
}

/// `POST /auth/login`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    /// Username or email.
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for LoginBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginBody")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

fn no_store(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn oauth_error(error: &'static str, description: &str) -> Response {
    let body = OAuthError {
        error,
        error_description: description.to_owned(),
    };
    no_store((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// Parses a urlencoded form; a parameter given twice is an error (RFC
/// 6749 §3.2), and so is a NUL character anywhere (text no database can
/// store is refused at the edge, as `ApiJson` does; here it is an OAuth
/// `invalid_request`).
fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, &'static str> {
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return Err("the body must be application/x-www-form-urlencoded");
    }
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if k.contains('\0') || v.contains('\0') {
            return Err("a parameter contains a NUL character (U+0000)");
        }
        if out.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err("a parameter was given more than once");
        }
    }
    Ok(out)
}

fn grant_failure(err: GrantError, oauth: bool) -> Response {
    match err {
        GrantError::MfaRequired(mfa_token) => {
            let body = MfaRequired {
                error: "mfa_required",
                error_description: "A second factor is required: send the mfa_token with a code",
                mfa_token,
            };
            no_store((StatusCode::FORBIDDEN, Json(body)).into_response())
        }
        GrantError::Unverified => oauth_error(
            "invalid_grant",
            "The email address of this account is not verified; a verification mail has been sent (at most one an hour)",
        ),
        GrantError::InvalidMfa if oauth => oauth_error(
            "invalid_grant",
            "The code is wrong, or the mfa_token is invalid, used or expired",
        ),
        GrantError::InvalidCredentials if oauth => {
            oauth_error("invalid_grant", "Invalid username or password")
        }
        GrantError::InvalidRefreshToken if oauth => oauth_error(
            "invalid_grant",
            "The refresh token is invalid, expired or revoked",
        ),
        GrantError::InvalidCredentials
        | GrantError::InvalidRefreshToken
        | GrantError::InvalidMfa => ApiError::Unauthorized {
            invalid_token: false,
        }
        .into_response(),
        GrantError::Throttled(wait) => {
            let retry_after = wait.as_secs_f64().ceil().max(1.0) as u64;
            ApiError::TooManyRequests { retry_after }.into_response()
        }
        GrantError::Api(e) => e.into_response(),
    }
}

fn client_ip(ip: Option<Extension<ClientIp>>) -> Option<std::net::IpAddr> {
    ip.map(|Extension(c)| c.key)
}

/// The OAuth2 token endpoint.
#[utoipa::path(post, path = "/auth/token", tag = "auth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens issued", body = TokenResponse),
        (status = 400, description = "RFC 6749 §5.2 error", body = OAuthError),
        (status = 403, description = "Right password; a second factor is required", body = MfaRequired),
        (status = 429, description = "Rate limited", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Busy or a dependency is down", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn token(
    State(state): State<AuthState>,
    ctx: RequestContext,
    ip: Option<Extension<ClientIp>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match parse_form(&headers, &body) {
        Ok(form) => form,
        Err(why) => return oauth_error("invalid_request", why),
    };
    let scope = form
        .get("scope")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty());
    if scope.is_some() {
        return oauth_error("invalid_scope", "No scopes are defined on this server");
    }
    let result = match form.get("grant_type").map(String::as_str) {
        Some("password") => {
            let (Some(username), Some(password)) = (form.get("username"), form.get("password"))
            else {
                return oauth_error("invalid_request", "username and password are required");
            };
            if username.len() > MAX_FIELD
                || password.len() > MAX_FIELD
                || username.trim().is_empty()
            {
                return oauth_error("invalid_request", "username or password is malformed");
            }
            let route = (&http::Method::POST, "/auth/token");
            let result =
                super::password_login(&state, &ctx, route, client_ip(ip), username, password).await;
            super::count_login(&result);
            result
        }
        Some("refresh_token") => {
            let Some(token) = form.get("refresh_token") else {
                return oauth_error("invalid_request", "refresh_token is required");
            };
            super::refresh_grant(&state, &ctx, token).await
        }
        Some(MFA_OTP_GRANT) => {
            let (Some(mfa_token), Some(otp)) = (form.get("mfa_token"), form.get("otp")) else {
                return oauth_error("invalid_request", "mfa_token and otp are required");
            };
            let result = super::mfa_login(&state, &ctx, mfa_token, otp).await;
            super::count_login(&result);
            result
        }
        Some(_) => {
            return oauth_error(
                "unsupported_grant_type",
                "Use password, refresh_token or urn:palisade:params:oauth:grant-type:mfa-otp",
            );
        }
        None => return oauth_error("invalid_request", "grant_type is required"),
    };
    match result {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(e) => grant_failure(e, true),
    }
}

/// Password login for clients that send JSON; the same tokens as the
/// password grant.
#[utoipa::path(post, path = "/auth/login", tag = "auth",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Tokens issued", body = TokenResponse),
        (status = 400, description = "Right password, unverified address (with `auth.require_verified_email`)", body = OAuthError),
        (status = 401, description = "Invalid username or password", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Right password; a second factor is required", body = MfaRequired),
        (status = 422, description = "Malformed body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn login(
    State(state): State<AuthState>,
    ctx: RequestContext,
    ip: Option<Extension<ClientIp>>,
    ApiJson(body): ApiJson<LoginBody>,
) -> Response {
    if body.username.len() > MAX_FIELD
        || body.password.len() > MAX_FIELD
        || body.username.trim().is_empty()
    {
        return ApiError::Unauthorized {
            invalid_token: false,
        }
        .into_response();
    }
    let route = (&http::Method::POST, "/auth/login");
    let result = super::password_login(
        &state,
        &ctx,
        route,
        client_ip(ip),
        &body.username,
        &body.password,
    )
    .await;
    super::count_login(&result);
    match result {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(e) => no_store(grant_failure(e, false)),
    }
}

/// The second step of a login with a second factor, for clients that send
/// JSON: the same tokens as the mfa-otp grant.
#[utoipa::path(post, path = "/auth/login/mfa", tag = "auth",
    request_body = MfaLoginBody,
    responses(
        (status = 200, description = "Tokens issued", body = TokenResponse),
        (status = 401, description = "Wrong code, or the mfa_token is invalid, used or expired", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Malformed body", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Rate limited or backing off", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn login_mfa(
    State(state): State<AuthState>,
    ctx: RequestContext,
    ApiJson(body): ApiJson<MfaLoginBody>,
) -> Response {
    let result = super::mfa_login(&state, &ctx, &body.mfa_token, &body.otp).await;
    super::count_login(&result);
    match result {
        Ok(tokens) => no_store(Json(tokens).into_response()),
        Err(e) => no_store(grant_failure(e, false)),
    }
}

/// RFC 7009 revocation: always 200 for a well-formed request. Revoking a
/// refresh token or an access token ends its whole session.
#[utoipa::path(post, path = "/auth/revoke", tag = "auth",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "RFC 6749 §5.2 error", body = OAuthError),
    ))]
#[tracing::instrument(skip_all)]
pub async fn revoke(
    State(state): State<AuthState>,
    ctx: RequestContext,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = match parse_form(&headers, &body) {
        Ok(form) => form,
        Err(why) => return oauth_error("invalid_request", why),
    };
    let Some(token) = form
        .get("token")
        .filter(|t| !t.is_empty() && t.len() <= 4096)
    else {
        return oauth_error("invalid_request", "token is required");
    };
    match super::revoke(&state, &ctx, token).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}

/// Ends the caller's session: its refresh token and every access token of
/// the session stop working.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    security(("bearer" = []), ("oauth2" = [])),
    responses(
        (status = 204, description = "Logged out"),
        (status = 401, description = "No valid token", body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all)]
pub async fn logout(
    State(state): State<AuthState>,
    ctx: RequestContext,
    EnrollingUser(caller): EnrollingUser,
) -> Result<StatusCode, ApiError> {
    sessions::end(
        state.db.pool(),
        &caller.claims.sid,
        EndReason::Logout,
        storage::now_ms(),
    )
    .await?;
    state.sessions.invalidate(&caller.user.id).await;
    audit::record(&state.db, Event::Logout, &ctx, Some(&caller.user.id), None).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        h
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        assert!(
            parse_form(
                &form_headers(),
                b"grant_type=password&grant_type=refresh_token"
            )
            .is_err()
        );
    }

    #[test]
    fn a_nul_character_in_a_form_is_refused() {
        let err = parse_form(&form_headers(), b"grant_type=password&username=a%00b").unwrap_err();
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn a_form_is_decoded() {
        let form = parse_form(&form_headers(), b"username=ada%40example.org&password=a+b").unwrap();
        assert_eq!(form["username"], "ada@example.org");
        assert_eq!(form["password"], "a b");
    }

    #[test]
    fn another_content_type_is_refused() {
        assert!(parse_form(&HeaderMap::new(), b"a=b").is_err());
    }
}
