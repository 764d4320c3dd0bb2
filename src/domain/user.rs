//! A user account as every layer above storage sees it: never a password
//! hash. Storage reads rows and hands out this; only storage and the
//! password check ever touch the hash.

use serde::{Serialize, Serializer};

use super::Role;

// Serialized as the API sends it: times as RFC 3339 UTC strings.
/// The user object of the contract. Never a hash, never a secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub username: String,
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    /// Whether the owner proved the address (a verification link, or a
    /// password reset, which goes through the mailbox too).
    pub email_verified: bool,
    /// RFC 3339, UTC.
    #[serde(serialize_with = "as_rfc3339")]
    #[schema(value_type = String)]
    pub created_at: i64,
    /// RFC 3339, UTC.
    #[serde(serialize_with = "as_rfc3339")]
    #[schema(value_type = String)]
    pub updated_at: i64,
    /// When the password last changed (Unix ms): access tokens issued
    /// before it are refused. Not part of the user object.
    #[serde(skip)]
    pub password_changed_at: i64,
}

/// Formats Unix milliseconds as an RFC 3339 UTC string.
pub fn rfc3339(ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Serializes Unix milliseconds as [`rfc3339`] text.
pub(super) fn as_rfc3339<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_serializes_as_the_contract_says_without_the_password_change_time() {
        let user = User {
            id: "0195f3b2-7c1e-7d4a-9b7e-2f1c3d4e5f60".into(),
            email: "ada@example.org".into(),
            username: "ada".into(),
            name: "Ada".into(),
            role: Role::Editor,
            disabled: false,
            email_verified: true,
            created_at: 0,
            updated_at: 1_500,
            password_changed_at: 42,
        };
        let json = serde_json::to_value(&user).unwrap();
        let mut keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "created_at",
                "disabled",
                "email",
                "email_verified",
                "id",
                "name",
                "role",
                "updated_at",
                "username"
            ]
        );
        assert_eq!(json["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(json["updated_at"], "1970-01-01T00:00:01.5Z");
        assert_eq!(json["role"], "editor");
    }
}
