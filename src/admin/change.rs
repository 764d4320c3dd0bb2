//! Applying an administrative change in one transaction: the rules, the
//! "last super_admin" check under lock, the change, and the end of the
//! target's sessions (so its access tokens stop working at once).

use crate::admin::rules::{self, Action, Party};
use crate::auth::audit::{self, Event, RequestContext};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::{self, sessions, sessions::EndReason, users, users::UserRow};

/// Who asks: a user over HTTP, or the operator at the command line (who
/// may act on anyone, but is held to the "last super_admin" rule and never
/// grants super_admin either).
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    User(&'a UserRow),
    Operator,
}

impl Actor<'_> {
    fn id(&self) -> &str {
        match self {
            Self::User(u) => &u.id,
            Self::Operator => "cli",
        }
    }
}

/// Authorizes and applies `action` to `target`.
pub async fn apply(
    state: &AppState,
    ctx: &RequestContext,
    actor: Actor<'_>,
    target: &UserRow,
    action: Action,
) -> Result<(), ApiError> {
    let target_party = Party {
        id: &target.id,
        role: target.role,
    };
    match actor {
        Actor::User(caller) => rules::authorize(
            Party {
                id: &caller.id,
                role: caller.role,
            },
            target_party,
            action,
        )?,
        Actor::Operator => {
            if let Action::Update {
                role: Some(crate::domain::Role::SuperAdmin),
                ..
            } = action
            {
                return Err(ApiError::Denied(
                    "super_admin is granted only with `palisade create-admin`".into(),
                ));
            }
        }
    }
    let now = storage::now_ms();
    let mut tx = state.db.pool().begin().await?;
    if rules::removes_super_admin(target.role, action) {
        users::lock_super_admins(&mut *tx).await?;
        if users::other_super_admins(&mut *tx, &target.id).await? == 0 {
            tx.rollback().await?;
            return Err(ApiError::Conflict(
                "The last super_admin can be neither demoted, disabled nor removed".into(),
            ));
        }
    }
    let (event, detail) = match action {
        Action::Update { role, disabled } => {
            users::set_role_and_status(&mut *tx, &target.id, role, disabled, now).await?;
            let role_changed = role.is_some_and(|r| r != target.role);
            let now_disabled = disabled == Some(true) && !target.disabled;
            if role_changed || now_disabled {
                let reason = if now_disabled {
                    EndReason::Disabled
                } else {
                    EndReason::RoleChanged
                };
                sessions::end_all(&mut *tx, &target.id, None, reason, now).await?;
            }
            let mut detail = Vec::new();
            if let Some(r) = role {
                detail.push(format!("role: {} -> {r}", target.role));
            }
            if let Some(d) = disabled {
                detail.push(format!("disabled: {} -> {d}", target.disabled));
            }
            (Event::AdminUpdateUser, detail.join("; "))
        }
        Action::Delete => {
            sessions::end_all(&mut *tx, &target.id, None, EndReason::AccountDeleted, now).await?;
            users::delete_in(&mut *tx, &target.id).await?;
            (
                Event::AdminDeleteUser,
                format!("deleted {} ({})", target.username, target.role),
            )
        }
    };
    tx.commit().await?;
    audit::record_by(
        &state.db,
        event,
        ctx,
        Some(actor.id()),
        Some(&target.id),
        Some(&detail),
    )
    .await
}
