//! Accounts: registration, the caller's profile, password change and
//! account deletion.

pub mod profile;
pub mod register;

use serde::Serialize;

use crate::domain::Role;
use crate::storage::{self, users::UserRow};

/// The user object of the contract. Never a hash, never a secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub username: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> Self {
        Self {
            id: row.id.clone(),
            email: row.email.clone(),
            username: row.username.clone(),
            name: row.name.clone(),
            role: row.role,
            disabled: row.disabled,
            created_at: storage::rfc3339(row.created_at),
            updated_at: storage::rfc3339(row.updated_at),
        }
    }
}
