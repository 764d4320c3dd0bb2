//! Who is calling a gateway route, by its `auth`, `role` and `scope`:
//! the same checks as Palisade's own routes ([`crate::auth::AuthUser`],
//! [`crate::auth::api_key::Scoped`]), with the route table's rules.
//!
//! - `none`: credentials are not read; no identity is sent.
//! - `optional`: no `Authorization` passes as anonymous; a credential that
//!   is sent must be valid (a bad token is 401, never "anonymous").
//! - `required`: an access token, or an API key on a route with a scope.
//! - An API key works only on a route that names a scope the key has; its
//!   owner must still hold the scope's role. An access token on such a
//!   route needs that role too.
//! - `role`: the least role, for tokens and keys alike (403 below it).

use http::HeaderMap;

use crate::auth::Authn;
use crate::auth::api_key::{self, by_key};
use crate::auth::extractor::{authenticate, bearer_token, no_credentials};
use crate::domain::User;
use crate::error::ApiError;
use crate::settings::{GatewayRoute, RouteAuth};

/// The caller of a forwarded request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    /// The session, or the API key's id.
    pub session_id: String,
    /// RFC 8176 methods: `pwd`, `otp`, `rc`, or `api_key`.
    pub amr: Vec<String>,
}

impl Caller {
    /// The one-word method of `X-Palisade-Auth-Method`: `api_key`, `otp`
    /// (a second factor was passed: a code or a recovery code) or `pwd`.
    pub fn auth_method(&self) -> &'static str {
        if self.amr.iter().any(|m| m == "api_key") {
            "api_key"
        } else if self.amr.iter().any(|m| m == "otp" || m == "rc") {
            "otp"
        } else {
            "pwd"
        }
    }
}

/// The caller of a request on `route`, or the refusal.
pub async fn resolve(
    authn: &Authn,
    route: &GatewayRoute,
    headers: &HeaderMap,
) -> Result<Option<Caller>, ApiError> {
    if route.auth == RouteAuth::None {
        return Ok(None);
    }
    let token = match bearer_token(headers)? {
        Some(token) => token,
        None if route.auth == RouteAuth::Optional => return Ok(None),
        None => return Err(no_credentials()),
    };
    let caller = if api_key::is_api_key(token) {
        let Some(scope) = route.scope else {
            return Err(ApiError::Denied(
                "API keys cannot be used on this route; use an access token".into(),
            ));
        };
        let (key, user) = by_key(authn, token).await?;
        if !key.scopes.split(',').any(|s| s == scope.as_str()) {
            return Err(ApiError::Denied(format!(
                "This API key does not have the {} scope",
                scope.as_str()
            )));
        }
        if user.role < scope.min_role() {
            return Err(ApiError::Denied(format!(
                "The key's owner no longer has the role the {} scope needs",
                scope.as_str()
            )));
        }
        Caller {
            user,
            session_id: key.id,
            amr: vec!["api_key".to_owned()],
        }
    } else {
        let caller = authenticate(authn, token).await?;
        if caller.claims.mfa_enrol {
            return Err(ApiError::MfaEnrolmentRequired);
        }
        if route.scope.is_some_and(|s| caller.user.role < s.min_role()) {
            return Err(ApiError::Forbidden);
        }
        Caller {
            user: caller.user,
            session_id: caller.claims.sid,
            amr: caller.claims.amr,
        }
    };
    if route.role.is_some_and(|least| caller.user.role < least) {
        return Err(ApiError::Forbidden);
    }
    Ok(Some(caller))
}
