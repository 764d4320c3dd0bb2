//! Roles, ordered `user` < `editor` < `admin` < `super_admin`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A user's role. The derived order is the privilege order.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Editor,
    Admin,
    SuperAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Editor => "editor",
            Self::Admin => "admin",
            Self::SuperAdmin => "super_admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "editor" => Ok(Self::Editor),
            "admin" => Ok(Self::Admin),
            "super_admin" => Ok(Self::SuperAdmin),
            other => Err(format!(
                "{other:?} is not a role (user, editor, admin, super_admin)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(
            Role::User < Role::Editor
                && Role::Editor < Role::Admin
                && Role::Admin < Role::SuperAdmin
        );
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in [Role::User, Role::Editor, Role::Admin, Role::SuperAdmin] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("Admin".parse::<Role>().is_err());
        assert!("root".parse::<Role>().is_err());
    }
}
