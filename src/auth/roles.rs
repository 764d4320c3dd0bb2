//! Authorization in types: a handler that takes `RequireRole<Admin>` (or
//! its alias [`AdminUser`]) cannot run for a caller below `admin`.
//!
//! The role checked is the one stored now, not the one in the token, so a
//! demotion takes effect on the next request (and ends the user's sessions
//! anyway).

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;

use super::{AuthUser, Authn};
use crate::domain::Role;
use crate::error::ApiError;

/// A minimum role, as a type.
pub trait MinRole: Send + Sync + 'static {
    const ROLE: Role;
}

/// `admin` or above.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl MinRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// `super_admin` only.
#[derive(Debug, Clone, Copy)]
pub struct SuperAdmin;

impl MinRole for SuperAdmin {
    const ROLE: Role = Role::SuperAdmin;
}

/// The caller, known to hold at least `M::ROLE`: 401 without a valid
/// token, 403 with a valid token of too low a role.
#[derive(Debug, Clone)]
pub struct RequireRole<M: MinRole> {
    pub caller: AuthUser,
    _role: PhantomData<M>,
}

/// An administrator (`admin` or `super_admin`).
pub type AdminUser = RequireRole<Admin>;

impl<M, S> FromRequestParts<S> for RequireRole<M>
where
    M: MinRole,
    S: Send + Sync,
    Authn: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        if caller.user.role < M::ROLE {
            return Err(ApiError::Forbidden);
        }
        Ok(Self {
            caller,
            _role: PhantomData,
        })
    }
}
