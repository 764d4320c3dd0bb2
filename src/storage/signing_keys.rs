//! The `signing_keys` table: the key set of asymmetric token signing,
//! shared by every instance. Private keys arrive here already sealed.

use sqlx::{AnyPool, Row};

/// One stored key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub kid: String,
    /// `access` or `identity` (`auth::signing::Purpose`).
    pub purpose: String,
    pub alg: String,
    /// The public JWK as JSON text.
    pub public_jwk: String,
    /// The sealed PKCS#8 private key.
    pub private_key: String,
    /// `generated` or `file`.
    pub source: String,
    pub created_at: i64,
    pub active_from: i64,
}

impl std::fmt::Debug for KeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRow")
            .field("kid", &self.kid)
            .field("purpose", &self.purpose)
            .field("alg", &self.alg)
            .field("source", &self.source)
            .field("created_at", &self.created_at)
            .field("active_from", &self.active_from)
            .finish_non_exhaustive()
    }
}

fn key_row(r: &sqlx::any::AnyRow) -> Result<KeyRow, sqlx::Error> {
    Ok(KeyRow {
        kid: r.try_get("kid")?,
        purpose: r.try_get("purpose")?,
        alg: r.try_get("alg")?,
        public_jwk: r.try_get("public_jwk")?,
        private_key: r.try_get("private_key")?,
        source: r.try_get("source")?,
        created_at: r.try_get("created_at")?,
        active_from: r.try_get("active_from")?,
    })
}

/// Adds `key`; `false` when its `kid` is already there (the same key,
/// since a `kid` is the key's thumbprint).
pub async fn insert(pool: &AnyPool, key: &KeyRow) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO signing_keys (kid, purpose, alg, public_jwk, private_key, source, created_at, active_from) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(&key.kid)
    .bind(&key.purpose)
    .bind(&key.alg)
    .bind(&key.public_jwk)
    .bind(&key.private_key)
    .bind(&key.source)
    .bind(key.created_at)
    .bind(key.active_from)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Every key of the set of `purpose` and `alg`, oldest activation first.
pub async fn list(pool: &AnyPool, purpose: &str, alg: &str) -> Result<Vec<KeyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kid, purpose, alg, public_jwk, private_key, source, created_at, active_from \
         FROM signing_keys WHERE purpose = $1 AND alg = $2 ORDER BY active_from, kid",
    )
    .bind(purpose)
    .bind(alg)
    .fetch_all(pool)
    .await?;
    rows.iter().map(key_row).collect()
}

/// Whether a key with this `kid` exists.
pub async fn exists(pool: &AnyPool, kid: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM signing_keys WHERE kid = $1")
        .bind(kid)
        .fetch_one(pool)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Removes the keys in `kids` (retired keys past their publication).
pub async fn delete(pool: &AnyPool, kids: &[String]) -> Result<u64, sqlx::Error> {
    let mut removed = 0;
    for kid in kids {
        removed += sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
            .bind(kid)
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok(removed)
}
