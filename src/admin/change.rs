//! Applying an administrative change in one transaction: lock the target
//! (and, where a super_admin could be taken away, every super_admin),
//! re-read the target and the caller under the lock and authorize against
//! what is true now, apply the change, end the target's sessions (so its
//! access tokens stop working at once) and write the audit event, then
//! commit. Either all of it happens or none. Once committed, the target is
//! evicted from every instance's session cache before `apply` returns.

use crate::admin::rules::{self, Action, Party};
use crate::auth::audit::{self, Event, RequestContext};
use crate::cache::SessionCache;
use crate::domain::User;
use crate::error::ApiError;
use crate::storage::{self, Db, events, sessions, sessions::EndReason, users};

/// Who asks: a user over HTTP, or the operator at the command line (who
/// may act on anyone, but is held to the "last super_admin" rule and never
/// grants super_admin either).
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    User(&'a str),
    Operator,
}

impl Actor<'_> {
    fn id(&self) -> &str {
        match self {
            Self::User(id) => id,
            Self::Operator => "cli",
        }
    }
}

/// Authorizes and applies `action` to the user `target_id`; returns the
/// user as it is afterwards (`None` once deleted).
pub async fn apply(
    db: &Db,
    sessions: &SessionCache,
    ctx: &RequestContext,
    actor: Actor<'_>,
    target_id: &str,
    action: Action,
) -> Result<Option<User>, ApiError> {
    let now = storage::now_ms();
    let mut tx = db.pool().begin().await?;
    // The first statement writes, so SQLite takes its write lock at once
    // and PostgreSQL locks the row: nothing below can be raced.
    users::lock(&mut *tx, target_id).await?;
    let target = users::find_by_id(&mut *tx, target_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let refusal = match actor {
        Actor::User(caller_id) => {
            let caller = users::find_by_id(&mut *tx, caller_id).await?;
            match caller {
                Some(c) if !c.disabled => rules::authorize(
                    Party {
                        id: &c.id,
                        role: c.role,
                    },
                    Party {
                        id: &target.id,
                        role: target.role,
                    },
                    action,
                ),
                _ => Err(ApiError::Unauthorized {
                    invalid_token: true,
                }),
            }
        }
        Actor::Operator => match action {
            Action::Update {
                role: Some(crate::domain::Role::SuperAdmin),
                ..
            } => Err(ApiError::Denied(
                "super_admin is granted only with `palisade create-admin`".into(),
            )),
            _ => Ok(()),
        },
    };
    if let Err(e) = refusal {
        tx.rollback().await?;
        return Err(e);
    }
    if rules::removes_super_admin(target.role, action) {
        // Returning drops the transaction, which rolls it back.
        if users::is_last_super_admin(&mut tx, &target.id).await? {
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
            users::delete(&mut *tx, &target.id).await?;
            (
                Event::AdminDeleteUser,
                format!("deleted {} ({})", target.username, target.role),
            )
        }
    };
    let row = audit::event(
        event,
        ctx,
        Some(actor.id()),
        Some(&target.id),
        Some(&detail),
    );
    events::insert(&mut *tx, &row, now).await?;
    let after = users::find_by_id(&mut *tx, &target.id).await?;
    tx.commit().await?;
    // Committed: the target's cached sessions and user go everywhere before
    // anyone is told it is done.
    sessions.invalidate(&target.id).await;
    Ok(after)
}
