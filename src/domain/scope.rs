//! What an API key may do: the scopes a key is created with and a route
//! (or a gateway route) asks for.

use super::Role;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    ProfileRead,
    AiGenerate,
    DataRead,
    UsersRead,
    AuditRead,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Self::ProfileRead,
        Self::AiGenerate,
        Self::DataRead,
        Self::UsersRead,
        Self::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProfileRead => "profile:read",
            Self::AiGenerate => "ai:generate",
            Self::DataRead => "data:read",
            Self::UsersRead => "users:read",
            Self::AuditRead => "audit:read",
        }
    }

    /// The role the owner needs for the scope to work.
    pub fn min_role(self) -> Role {
        match self {
            Self::UsersRead | Self::AuditRead => Role::Admin,
            _ => Role::User,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}
