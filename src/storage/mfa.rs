//! The `totp_factors`, `recovery_codes` and `mfa_challenges` tables. What
//! is stored is already sealed or digested by `auth`: a sealed secret, the
//! keyed digests of recovery codes, the SHA-256 of an `mfa_token`.

use sqlx::{Any, AnyPool, Executor, Row};

/// A user's TOTP factor as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Factor {
    /// Nonce and ciphertext, as `auth::seal` wrote them.
    pub sealed_secret: String,
    pub confirmed: bool,
    /// The highest time step accepted so far.
    pub last_step: i64,
}

impl std::fmt::Debug for Factor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Factor")
            .field("confirmed", &self.confirmed)
            .field("last_step", &self.last_step)
            .finish_non_exhaustive()
    }
}

/// The factor of `user_id`, pending or active.
pub async fn factor(pool: &AnyPool, user_id: &str) -> Result<Option<Factor>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT sealed_secret, confirmed_at, last_step FROM totp_factors WHERE user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(Factor {
            sealed_secret: r.try_get("sealed_secret")?,
            confirmed: r.try_get::<Option<i64>, _>("confirmed_at")?.is_some(),
            last_step: r.try_get("last_step")?,
        })
    })
    .transpose()
}

/// Whether `user_id` has an active (confirmed) factor.
pub async fn has_active_factor(pool: &AnyPool, user_id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM totp_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Stores a new pending factor for `user_id`, replacing a pending one.
/// Returns false (and stores nothing) when an active factor exists.
pub async fn put_pending(
    pool: &AnyPool,
    user_id: &str,
    sealed_secret: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO totp_factors (user_id, sealed_secret, created_at, confirmed_at, last_step) \
         VALUES ($1, $2, $3, NULL, 0) \
         ON CONFLICT (user_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
         created_at = excluded.created_at, last_step = 0 \
         WHERE totp_factors.confirmed_at IS NULL",
    )
    .bind(user_id)
    .bind(sealed_secret)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Accepts time step `step` for `user_id` if it is later than every step
/// accepted before: the one write that makes a code single-use, atomic
/// across instances. Returns whether it was accepted.
pub async fn accept_step<'e>(
    ex: impl Executor<'e, Database = Any>,
    user_id: &str,
    step: i64,
) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE totp_factors SET last_step = $2 WHERE user_id = $1 AND last_step < $2")
            .bind(user_id)
            .bind(step)
            .execute(ex)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Activates the pending factor of `user_id` and stores its recovery
/// codes, in one transaction. Returns false if there was no pending factor.
pub async fn confirm(
    pool: &AnyPool,
    user_id: &str,
    step: i64,
    code_hashes: &[String],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query(
        "UPDATE totp_factors SET confirmed_at = $2, last_step = $3 \
         WHERE user_id = $1 AND confirmed_at IS NULL AND last_step < $3",
    )
    .bind(user_id)
    .bind(now)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    replace_codes(&mut tx, user_id, code_hashes, now).await?;
    tx.commit().await?;
    Ok(true)
}

async fn replace_codes(
    tx: &mut sqlx::Transaction<'_, Any>,
    user_id: &str,
    code_hashes: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    for hash in code_hashes {
        sqlx::query(
            "INSERT INTO recovery_codes (user_id, code_hash, created_at, used_at) \
             VALUES ($1, $2, $3, NULL)",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// Replaces the recovery codes of a user with an active factor. Returns
/// false if the user has none.
pub async fn regenerate_codes(
    pool: &AnyPool,
    user_id: &str,
    code_hashes: &[String],
    now: i64,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Takes the factor's row lock first, so that two regenerations (or a
    // regeneration and a removal) are ordered.
    let active = sqlx::query(
        "UPDATE totp_factors SET last_step = last_step WHERE user_id = $1 AND confirmed_at IS NOT NULL",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    if active.rows_affected() == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    replace_codes(&mut tx, user_id, code_hashes, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Uses one recovery code: marks it used if it is unused. Returns whether
/// it was.
pub async fn use_code(
    pool: &AnyPool,
    user_id: &str,
    code_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE recovery_codes SET used_at = $3 \
         WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
    )
    .bind(user_id)
    .bind(code_hash)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// How many unused recovery codes `user_id` has.
pub async fn codes_left(pool: &AnyPool, user_id: &str) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(pool)
    .await?;
    row.try_get("n")
}

/// Removes the factor (pending or active), its recovery codes and open
/// challenges. Returns whether a factor existed.
pub async fn remove(pool: &AnyPool, user_id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let done = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM mfa_challenges WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

/// Opens a challenge: the step between the password and the code.
pub async fn open_challenge(
    pool: &AnyPool,
    token_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO mfa_challenges (token_hash, user_id, created_at, expires_at, failures, used_at) \
         VALUES ($1, $2, $3, $4, 0, NULL)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// The user of a challenge that is unused, unexpired and has fewer than
/// `max_failures` failures.
pub async fn live_challenge(
    pool: &AnyPool,
    token_hash: &str,
    now: i64,
    max_failures: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT user_id FROM mfa_challenges \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND failures < $3",
    )
    .bind(token_hash)
    .bind(now)
    .bind(max_failures)
    .fetch_optional(pool)
    .await?;
    row.map(|r| r.try_get("user_id")).transpose()
}

/// Counts a wrong code against a challenge.
pub async fn fail_challenge(pool: &AnyPool, token_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE mfa_challenges SET failures = failures + 1 WHERE token_hash = $1")
        .bind(token_hash)
        .execute(pool)
        .await?;
    Ok(())
}

/// Spends a challenge (once). Returns whether this call spent it.
pub async fn spend_challenge(
    pool: &AnyPool,
    token_hash: &str,
    now: i64,
    max_failures: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE mfa_challenges SET used_at = $2 \
         WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 AND failures < $3",
    )
    .bind(token_hash)
    .bind(now)
    .bind(max_failures)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}
