//! The `email_tokens` table: single-use tokens mailed for email
//! verification and password reset, kept as SHA-256 digests only.

use sqlx::{Any, AnyPool, Executor, Row};

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Verify,
    Reset,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Verify => "verify",
            Self::Reset => "reset",
        }
    }
}

/// A token found by its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub user_id: String,
    pub stamp: String,
}

/// Stores a new token.
pub async fn insert(
    pool: &AnyPool,
    token_hash: &str,
    user_id: &str,
    purpose: Purpose,
    stamp: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_tokens (token_hash, user_id, purpose, stamp, created_at, expires_at, used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, NULL)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(stamp)
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Spends an unused, unexpired token of `purpose`: marks it used and
/// returns whose it was and what it was issued against. `None`: no such
/// token, or already used, or expired (indistinguishable on purpose).
pub async fn spend<'e>(
    ex: impl Executor<'e, Database = Any>,
    token_hash: &str,
    purpose: Purpose,
    now: i64,
) -> Result<Option<Found>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE email_tokens SET used_at = $3 \
         WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 \
         RETURNING user_id, stamp",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| {
        Ok(Found {
            user_id: r.try_get("user_id")?,
            stamp: r.try_get("stamp")?,
        })
    })
    .transpose()
}

/// Voids every unused token of `purpose` of a user (a reset done, a
/// password changed).
pub async fn void_all<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    purpose: Purpose,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE email_tokens SET used_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// When the newest token of `purpose` was issued to a user, if any (the
/// re-send of a verification mail at login is at most hourly).
pub async fn last_issued(
    pool: &AnyPool,
    user_id: &str,
    purpose: Purpose,
) -> Result<Option<i64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT MAX(created_at) AS at FROM email_tokens WHERE user_id = $1 AND purpose = $2",
    )
    .bind(user_id)
    .bind(purpose.as_str())
    .fetch_one(pool)
    .await?;
    row.try_get("at")
}

/// The account and stamp of an unused, unexpired token of `purpose`,
/// without spending it.
pub async fn peek(
    pool: &AnyPool,
    token_hash: &str,
    purpose: Purpose,
    now: i64,
) -> Result<Option<(crate::domain::User, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.disabled, \
         u.password_changed_at, u.email_verified, u.created_at, u.updated_at, t.stamp AS token_stamp \
         FROM email_tokens t JOIN users u ON u.id = t.user_id \
         WHERE t.token_hash = $1 AND t.purpose = $2 AND t.used_at IS NULL AND t.expires_at > $3",
    )
    .bind(token_hash)
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((super::users::from_row(&r)?, r.try_get("token_stamp")?)))
        .transpose()
}
