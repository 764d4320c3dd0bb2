//! The `api_keys` table: keys of machine clients, by their SHA-256.

use sqlx::{AnyPool, Row};

use super::users;
use crate::domain::User;

/// A key as its owner sees it (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// Comma-separated.
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub last_used_at: Option<i64>,
}

fn key_row(r: &sqlx::any::AnyRow) -> Result<KeyRow, sqlx::Error> {
    Ok(KeyRow {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        prefix: r.try_get("prefix")?,
        scopes: r.try_get("scopes")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        last_used_at: r.try_get("last_used_at")?,
    })
}

/// What a new key stores.
#[derive(Debug)]
pub struct NewKey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub name: &'a str,
    pub key_hash: &'a str,
    pub prefix: &'a str,
    pub scopes: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

pub async fn insert(pool: &AnyPool, key: &NewKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, user_id, name, key_hash, prefix, scopes, created_at, expires_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
    )
    .bind(key.id)
    .bind(key.user_id)
    .bind(key.name)
    .bind(key.key_hash)
    .bind(key.prefix)
    .bind(key.scopes)
    .bind(key.created_at)
    .bind(key.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The keys of `user_id`, newest first.
pub async fn list(pool: &AnyPool, user_id: &str) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, prefix, scopes, created_at, expires_at, last_used_at FROM api_keys \
         WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(key_row).collect()
}

/// How many keys `user_id` has.
pub async fn count(pool: &AnyPool, user_id: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM api_keys WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(pool)
        .await?;
    row.try_get("n")
}

/// Deletes one key of `user_id`. Returns whether it did.
pub async fn delete(pool: &AnyPool, user_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The key with digest `key_hash`, unexpired at `now`, with its owner as
/// the database has it now.
pub async fn find(
    pool: &AnyPool,
    key_hash: &str,
    now: i64,
) -> Result<Option<(KeyRow, User)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT k.id AS key_id, k.name AS key_name, k.prefix, k.scopes, k.created_at AS key_created_at, \
         k.expires_at AS key_expires_at, k.last_used_at AS key_last_used_at, \
         u.id, u.email, u.username, u.name, u.role, u.disabled, \
         u.password_changed_at, u.email_verified, u.created_at, u.updated_at \
         FROM api_keys k JOIN users u ON u.id = k.user_id \
         WHERE k.key_hash = $1 AND k.expires_at > $2",
    )
    .bind(key_hash)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        let key = KeyRow {
            id: r.try_get("key_id")?,
            name: r.try_get("key_name")?,
            prefix: r.try_get("prefix")?,
            scopes: r.try_get("scopes")?,
            created_at: r.try_get("key_created_at")?,
            expires_at: r.try_get("key_expires_at")?,
            last_used_at: r.try_get("key_last_used_at")?,
        };
        Ok((key, users::from_row(&r)?))
    })
    .transpose()
}

/// Records a use at `now` unless one at or after `since` is recorded.
pub async fn touch(pool: &AnyPool, id: &str, now: i64, since: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
    )
    .bind(id)
    .bind(now)
    .bind(since)
    .execute(pool)
    .await?;
    Ok(())
}
