//! The `refresh_tokens` table. Only SHA-256 hashes are stored.

use sqlx::{Any, AnyPool, Executor, Row};

pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    token_hash: &str,
    session_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .bind(token_hash)
        .bind(session_id)
        .bind(now)
        .bind(expires_at)
        .execute(ex)
        .await?;
    Ok(())
}

/// Marks an unused, unexpired token used, atomically: of two concurrent
/// calls for one token exactly one gets its session id back.
pub async fn consume<'e>(
    ex: impl Executor<'e, Database = Any>,
    token_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING session_id",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|r| r.try_get("session_id")).transpose()
}

/// A token's session and when it was used, if it exists at all.
pub async fn lookup(
    pool: &AnyPool,
    token_hash: &str,
) -> Result<Option<(String, Option<i64>)>, sqlx::Error> {
    let row = sqlx::query("SELECT session_id, used_at FROM refresh_tokens WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((r.try_get("session_id")?, r.try_get("used_at")?)))
        .transpose()
}
