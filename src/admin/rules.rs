//! Who may do what to whom. Pure functions, so the whole table is tested
//! without a server; the handlers call [`authorize`] before any change.
//!
//! - An admin may set only `user` or `editor`, and may not act on an admin
//!   or a super_admin.
//! - Only a super_admin grants or removes `admin`.
//! - Nobody grants `super_admin` over HTTP (`palisade create-admin` does).
//! - Nobody changes their own role or disables or deletes themselves here.
//! - The last enabled super_admin can be neither demoted, disabled nor
//!   removed (checked in the transaction that makes the change).

use crate::domain::Role;
use crate::error::ApiError;

/// What is being done to the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Update {
        role: Option<Role>,
        disabled: Option<bool>,
    },
    Delete,
}

/// The people involved.
#[derive(Debug, Clone, Copy)]
pub struct Party<'a> {
    pub id: &'a str,
    pub role: Role,
}

/// Refuses what the caller may not do, with a reason it may know.
pub fn authorize(caller: Party<'_>, target: Party<'_>, action: Action) -> Result<(), ApiError> {
    let deny = |why: &str| Err(ApiError::Denied(why.to_owned()));
    if caller.role < Role::Admin {
        return Err(ApiError::Forbidden);
    }
    if caller.id == target.id {
        return deny("You cannot change your own role or status, or delete yourself, here");
    }
    if caller.role == Role::Admin && target.role >= Role::Admin {
        return deny("An admin cannot act on an admin or a super_admin");
    }
    if let Action::Update {
        role: Some(role), ..
    } = action
    {
        if role == Role::SuperAdmin {
            return deny("super_admin is granted only with `palisade create-admin`");
        }
        if caller.role == Role::Admin && role >= Role::Admin {
            return deny("Only a super_admin grants the admin role");
        }
    }
    Ok(())
}

/// Whether the action would take a super_admin away (so the "last
/// super_admin" check applies).
pub fn removes_super_admin(target: Role, action: Action) -> bool {
    target == Role::SuperAdmin
        && match action {
            Action::Delete => true,
            Action::Update { role, disabled } => {
                role.is_some_and(|r| r != Role::SuperAdmin) || disabled == Some(true)
            }
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: [Role; 4] = [Role::User, Role::Editor, Role::Admin, Role::SuperAdmin];

    fn allowed(caller: Role, target: Role, action: Action) -> bool {
        authorize(
            Party {
                id: "caller",
                role: caller,
            },
            Party {
                id: "target",
                role: target,
            },
            action,
        )
        .is_ok()
    }

    #[test]
    fn users_and_editors_may_do_nothing() {
        for caller in [Role::User, Role::Editor] {
            for target in ROLES {
                assert!(!allowed(caller, target, Action::Delete));
                assert!(!allowed(
                    caller,
                    target,
                    Action::Update {
                        role: None,
                        disabled: Some(true)
                    }
                ));
            }
        }
    }

    #[test]
    fn an_admin_acts_only_on_users_and_editors_and_grants_only_those_roles() {
        for target in ROLES {
            let lower = target <= Role::Editor;
            assert_eq!(
                allowed(Role::Admin, target, Action::Delete),
                lower,
                "{target}"
            );
            for role in ROLES {
                let update = Action::Update {
                    role: Some(role),
                    disabled: None,
                };
                assert_eq!(
                    allowed(Role::Admin, target, update),
                    lower && role <= Role::Editor,
                    "{target} -> {role}"
                );
            }
        }
    }

    #[test]
    fn a_super_admin_grants_and_removes_admin_but_never_grants_super_admin() {
        for target in ROLES {
            assert!(allowed(Role::SuperAdmin, target, Action::Delete));
            for role in ROLES {
                let update = Action::Update {
                    role: Some(role),
                    disabled: None,
                };
                assert_eq!(
                    allowed(Role::SuperAdmin, target, update),
                    role != Role::SuperAdmin
                );
            }
        }
    }

    #[test]
    fn nobody_acts_on_themselves() {
        for role in [Role::Admin, Role::SuperAdmin] {
            let me = Party { id: "me", role };
            assert!(authorize(me, me, Action::Delete).is_err());
            assert!(
                authorize(
                    me,
                    me,
                    Action::Update {
                        role: Some(Role::User),
                        disabled: None
                    }
                )
                .is_err()
            );
            assert!(
                authorize(
                    me,
                    me,
                    Action::Update {
                        role: None,
                        disabled: Some(true)
                    }
                )
                .is_err()
            );
        }
    }

    #[test]
    fn demoting_disabling_or_deleting_a_super_admin_removes_one() {
        assert!(removes_super_admin(Role::SuperAdmin, Action::Delete));
        assert!(removes_super_admin(
            Role::SuperAdmin,
            Action::Update {
                role: Some(Role::Admin),
                disabled: None
            }
        ));
        assert!(removes_super_admin(
            Role::SuperAdmin,
            Action::Update {
                role: None,
                disabled: Some(true)
            }
        ));
        assert!(!removes_super_admin(
            Role::SuperAdmin,
            Action::Update {
                role: None,
                disabled: Some(false)
            }
        ));
        assert!(!removes_super_admin(Role::Admin, Action::Delete));
    }
}
