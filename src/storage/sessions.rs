//! The `sessions` table: one row per login, the family of its refresh
//! tokens.

use sqlx::{Any, AnyPool, Executor, Row};

use super::users;
use crate::domain::User;

/// Why a session ended (kept for the audit trail).
#[derive(Debug, Clone, Copy)]
pub enum EndReason {
    Logout,
    Revoked,
    ReuseDetected,
    PasswordChanged,
    AccountDeleted,
    Disabled,
    RoleChanged,
    /// Ended by its owner through `DELETE /sessions[/{id}]`.
    EndedByUser,
    /// A second factor was turned on: every other session ends.
    MfaEnabled,
    /// The password was reset through a mailed link: every session ends.
    PasswordReset,
}

impl EndReason {
    /// Counts `n` sessions ended for this reason (`/metrics`).
    fn count(self, n: u64) {
        if n > 0 {
            // `telemetry::prom::SESSIONS_ENDED` (a peer module: named here).
            metrics::counter!("palisade_sessions_ended_total", "reason" => self.as_str())
                .increment(n);
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::Revoked => "revoked",
            Self::ReuseDetected => "reuse_detected",
            Self::PasswordChanged => "password_changed",
            Self::AccountDeleted => "account_deleted",
            Self::Disabled => "disabled",
            Self::RoleChanged => "role_changed",
            Self::EndedByUser => "ended_by_user",
            Self::MfaEnabled => "mfa_enabled",
            Self::PasswordReset => "password_reset",
        }
    }
}

/// Where a session was opened from, and how.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// How the user proved who they are (RFC 8176 values, comma-separated).
    pub amr: &'a str,
}

pub async fn create(
    pool: &AnyPool,
    user_id: &str,
    now: i64,
    expires_at: i64,
    origin: Origin<'_>,
) -> Result<String, sqlx::Error> {
    let id = super::new_id();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, expires_at, last_used_at, ip, user_agent, amr) \
         VALUES ($1, $2, $3, $4, $3, $5, $6, $7)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .bind(origin.ip)
    .bind(origin.user_agent)
    .bind(origin.amr)
    .execute(pool)
    .await?;
    Ok(id)
}

/// An open session as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub amr: String,
}

/// The open sessions of `user_id` at `now`, newest first.
pub async fn list_open(
    pool: &AnyPool,
    user_id: &str,
    now: i64,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, created_at, last_used_at, expires_at, ip, user_agent, amr FROM sessions \
         WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 \
         ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let created_at: i64 = r.try_get("created_at")?;
            Ok(SessionRow {
                id: r.try_get("id")?,
                created_at,
                last_used_at: r
                    .try_get::<Option<i64>, _>("last_used_at")?
                    .unwrap_or(created_at),
                expires_at: r.try_get("expires_at")?,
                ip: r.try_get("ip")?,
                user_agent: r.try_get("user_agent")?,
                amr: r.try_get("amr")?,
            })
        })
        .collect()
}

/// Records a use of the session at `now` unless one at or after `since`
/// is recorded already (so instances that race write once). Returns
/// whether it wrote.
pub async fn touch<'e>(
    ex: impl Executor<'e, Database = Any>,
    session_id: &str,
    now: i64,
    since: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sessions SET last_used_at = $2 \
         WHERE id = $1 AND ended_at IS NULL AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(session_id)
    .bind(now)
    .bind(since)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends one open session of `user_id`. Returns whether it did (false: no
/// such open session of that user).
pub async fn end_own(
    pool: &AnyPool,
    user_id: &str,
    session_id: &str,
    reason: EndReason,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sessions SET ended_at = $3, end_reason = $4 \
         WHERE id = $1 AND user_id = $2 AND ended_at IS NULL",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(now)
    .bind(reason.as_str())
    .execute(pool)
    .await?;
    reason.count(done.rows_affected());
    Ok(done.rows_affected() > 0)
}

/// The user of a session that is still open at `now`, with the session's
/// absolute expiry, in one query: the check behind every authenticated
/// request the session cache does not answer.
pub async fn active_user(
    pool: &AnyPool,
    session_id: &str,
    user_id: &str,
    now: i64,
) -> Result<Option<(User, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.disabled, \
         u.password_changed_at, u.email_verified, u.created_at, u.updated_at, s.expires_at AS session_expires_at \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.user_id = $2 AND s.ended_at IS NULL AND s.expires_at > $3",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((users::from_row(&r)?, r.try_get("session_expires_at")?)))
        .transpose()
}

/// The user, the absolute expiry and the `amr` of a session open at `now`.
pub async fn open_session<'e>(
    ex: impl Executor<'e, Database = Any>,
    session_id: &str,
    now: i64,
) -> Result<Option<(User, i64, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.disabled, \
         u.password_changed_at, u.email_verified, u.created_at, u.updated_at, \
         s.expires_at AS session_expires_at, s.amr AS session_amr \
         FROM sessions s JOIN users u ON u.id = s.user_id \
         WHERE s.id = $1 AND s.ended_at IS NULL AND s.expires_at > $2",
    )
    .bind(session_id)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok((
            users::from_row(&r)?,
            r.try_get("session_expires_at")?,
            r.try_get("session_amr")?,
        ))
    })
    .transpose()
}

/// Ends one session. Returns its owner if it was open.
pub async fn end(
    pool: &AnyPool,
    session_id: &str,
    reason: EndReason,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE sessions SET ended_at = $2, end_reason = $3 \
         WHERE id = $1 AND ended_at IS NULL RETURNING user_id",
    )
    .bind(session_id)
    .bind(now)
    .bind(reason.as_str())
    .fetch_optional(pool)
    .await?;
    reason.count(u64::from(row.is_some()));
    row.map(|r| r.try_get("user_id")).transpose()
}

/// Ends every open session of a user except `keep`. Returns how many.
pub async fn end_all<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    keep: Option<&str>,
    reason: EndReason,
    now: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE sessions SET ended_at = $3, end_reason = $4 \
         WHERE user_id = $1 AND ended_at IS NULL AND ($2 IS NULL OR id <> $2)",
    )
    .bind(user_id)
    .bind(keep)
    .bind(now)
    .bind(reason.as_str())
    .execute(ex)
    .await?;
    // Counted when the statement ran; a transaction rolled back later
    // still counts (rare: the callers commit right after).
    reason.count(done.rows_affected());
    Ok(done.rows_affected())
}

/// The owner of a session, open or not.
pub async fn owner(pool: &AnyPool, session_id: &str) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query("SELECT user_id FROM sessions WHERE id = $1")
        .bind(session_id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.try_get("user_id")).transpose()
}
