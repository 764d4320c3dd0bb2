//! The `login_devices` table: digests of where each user has logged in
//! from, for the new-device notice.

use sqlx::{AnyPool, Row};

/// What a login from `device` at `now` was for this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// The user's first recorded login: nothing to compare with.
    First,
    /// Seen within `window` before.
    Known,
    /// Never seen, or not within `window`.
    New,
}

/// Records a login of `user_id` from `device` and says whether it was new
/// (not seen within `window` ms).
pub async fn record(
    pool: &AnyPool,
    user_id: &str,
    device: &str,
    now: i64,
    window: i64,
) -> Result<Seen, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, \
         SUM(CASE WHEN device = $2 AND last_seen_at > $3 THEN 1 ELSE 0 END) AS recent \
         FROM login_devices WHERE user_id = $1",
    )
    .bind(user_id)
    .bind(device)
    .bind(now - window)
    .fetch_one(&mut *tx)
    .await?;
    let any: i64 = row.try_get("n")?;
    let recent: Option<i64> = row.try_get("recent")?;
    sqlx::query(
        "INSERT INTO login_devices (user_id, device, last_seen_at) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, device) DO UPDATE SET last_seen_at = excluded.last_seen_at",
    )
    .bind(user_id)
    .bind(device)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(match (any, recent.unwrap_or(0)) {
        (0, _) => Seen::First,
        (_, 0) => Seen::New,
        _ => Seen::Known,
    })
}
