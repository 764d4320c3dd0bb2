//! API keys for machine clients: `pal_ak_` + 256 random bits, stored as
//! SHA-256, sent as `Authorization: Bearer pal_ak_...`.
//!
//! A key acts as its owner with at most its scopes, and never above the
//! owner's role as the database has it at that request: each use reads
//! the key and its owner (no cache), so deleting the key, disabling or
//! deleting the owner, or lowering the owner's role stops it at once.
//!
//! Routes opt in by naming a scope in their signature, [`Scoped<S>`]: it
//! takes an access token as [`AuthUser`] would, or a key with scope `S`.
//! Every other route's extractor ([`AuthUser`], [`EnrollingUser`],
//! `RequireRole`) refuses keys with 403, so a key can never manage keys,
//! sessions, passwords, second factors or roles.

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use super::extractor::{EnrollingUser, bearer_token, no_credentials};
use super::{AuthUser, Authn, refresh};
pub use crate::domain::Scope;
use crate::domain::User;
use crate::error::ApiError;
use crate::storage::{self, api_keys};

/// Every API key starts with this.
pub const PREFIX: &str = "pal_ak_";

/// A scope as a type, for [`Scoped`].
pub trait ScopeMarker: Send + Sync + 'static {
    const SCOPE: Scope;
    /// Whether an access token restricted to MFA enrolment is accepted
    /// (only `/profile`).
    const ENROLLING: bool = false;
}

macro_rules! scope_marker {
    ($($name:ident => $scope:ident $(, enrolling = $e:literal)?;)*) => {$(
        #[doc = concat!("The `", stringify!($scope), "` scope.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl ScopeMarker for $name {
            const SCOPE: Scope = Scope::$scope;
            $(const ENROLLING: bool = $e;)?
        }
    )*};
}

scope_marker! {
    ProfileRead => ProfileRead, enrolling = true;
    AiGenerate => AiGenerate;
    UsersRead => UsersRead;
    AuditRead => AuditRead;
}

/// A new key, as shown to its owner once, and its digest and prefix.
pub fn generate() -> Result<(String, String, String), getrandom::Error> {
    let key = refresh::generate_prefixed(PREFIX)?;
    let digest = refresh::hash(&key);
    let prefix = key[..PREFIX.len() + 8].to_owned();
    Ok((key, digest, prefix))
}

/// Whether a bearer token is an API key (by its prefix).
pub fn is_api_key(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// The caller of a route that keys with scope `S` may call: an access
/// token's user (whose role must reach the scope's), or a key's owner.
#[derive(Debug, Clone)]
pub struct Scoped<S: ScopeMarker> {
    pub user: User,
    /// The key's id, when a key was used.
    pub key_id: Option<String>,
    _scope: PhantomData<S>,
}

impl<S, St> FromRequestParts<St> for Scoped<S>
where
    S: ScopeMarker,
    St: Send + Sync,
    Authn: FromRef<St>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &St) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers)?
            .ok_or_else(no_credentials)?
            .to_owned();
        let min = S::SCOPE.min_role();
        if !is_api_key(&token) {
            let caller = if S::ENROLLING {
                EnrollingUser::from_request_parts(parts, state).await?.0
            } else {
                AuthUser::from_request_parts(parts, state).await?
            };
            if caller.user.role < min {
                return Err(ApiError::Forbidden);
            }
            return Ok(Self {
                user: caller.user,
                key_id: None,
                _scope: PhantomData,
            });
        }
        let authn = Authn::from_ref(state);
        let (key, user) = by_key(&authn, &token).await?;
        let has_scope = key.scopes.split(',').any(|s| s == S::SCOPE.as_str());
        if !has_scope {
            return Err(ApiError::Denied(format!(
                "This API key does not have the {} scope",
                S::SCOPE.as_str()
            )));
        }
        if user.role < min {
            return Err(ApiError::Denied(format!(
                "The key's owner no longer has the role the {} scope needs",
                S::SCOPE.as_str()
            )));
        }
        Ok(Self {
            user,
            key_id: Some(key.id),
            _scope: PhantomData,
        })
    }
}

/// The key and its owner behind `token`: 401 for an unknown, expired or
/// malformed key or a disabled owner. Records the use (at most once a
/// minute per key and instance, off the request's path).
pub async fn by_key(state: &Authn, token: &str) -> Result<(api_keys::KeyRow, User), ApiError> {
    let invalid = || ApiError::Unauthorized {
        invalid_token: true,
    };
    if !refresh::looks_prefixed(PREFIX, token) {
        return Err(invalid());
    }
    let now = storage::now_ms();
    let found = api_keys::find(state.db.pool(), &refresh::hash(token), now).await?;
    let Some((key, user)) = found.filter(|(_, u)| !u.disabled) else {
        tracing::info!("API key refused: unknown, expired, or its owner disabled");
        return Err(invalid());
    };
    if state.sessions.touch_due(&key.id, now) {
        let pool = state.db.pool().clone();
        let id = key.id.clone();
        tokio::spawn(async move {
            let since = now - crate::cache::TOUCH_EVERY_MS;
            if let Err(e) = api_keys::touch(&pool, &id, now, since).await {
                tracing::debug!(error = %e, "could not record the key's last use");
            }
        });
    }
    Ok((key, user))
}

/// Refuses an API key where only an access token will do.
pub(super) fn refuse_key(token: &str) -> Result<(), ApiError> {
    if is_api_key(token) {
        return Err(ApiError::Denied(
            "API keys cannot be used on this route; use an access token".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    #[test]
    fn keys_are_prefixed_and_only_their_digest_and_prefix_are_kept() {
        let (key, digest, prefix) = generate().unwrap();
        assert!(key.starts_with(PREFIX) && key.len() == PREFIX.len() + 43);
        assert!(key.starts_with(&prefix) && prefix.len() == PREFIX.len() + 8);
        assert_eq!(digest, refresh::hash(&key));
        assert!(!digest.contains(&key[PREFIX.len()..]));
    }

    #[test]
    fn scopes_read_back_and_name_their_role() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("users:write"), None);
        assert_eq!(Scope::UsersRead.min_role(), Role::Admin);
        assert_eq!(Scope::AiGenerate.min_role(), Role::User);
    }
}
