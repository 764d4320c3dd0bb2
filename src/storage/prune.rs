//! Removing what is no longer needed, in bounded batches: ended and
//! expired sessions (their refresh tokens go with them), expired refresh
//! tokens of open sessions, spent and expired mailed tokens and MFA
//! challenges, old device records, and old security events.
//!
//! Each statement deletes at most one batch (`DELETE ... WHERE key IN
//! (SELECT key ... LIMIT n)`, portable between SQLite and PostgreSQL), so
//! no statement holds a long lock; a run repeats a statement until it
//! deletes less than a batch. Instances may prune at the same time: a row
//! is deleted once, whoever gets it.

use sqlx::{AnyPool, Row};

/// How long each kind of row is kept past the point where it stopped
/// mattering, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Sessions, after they ended or expired.
    pub sessions_ms: i64,
    /// Security events, after they happened.
    pub events_ms: i64,
    /// Refresh tokens, mailed tokens and MFA challenges, after they
    /// expired (used or not).
    pub tokens_ms: i64,
    /// Device records, after their last login.
    pub devices_ms: i64,
}

/// The kinds of row pruned, in the order they are pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Sessions,
    RefreshTokens,
    EmailTokens,
    MfaChallenges,
    LoginDevices,
    SecurityEvents,
}

const TABLES: [Table; 6] = [
    Table::Sessions,
    Table::RefreshTokens,
    Table::EmailTokens,
    Table::MfaChallenges,
    Table::LoginDevices,
    Table::SecurityEvents,
];

type AnyQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments<'static>>;

impl Table {
    fn name(self) -> &'static str {
        match self {
            Self::Sessions => "sessions",
            Self::RefreshTokens => "refresh_tokens",
            Self::EmailTokens => "email_tokens",
            Self::MfaChallenges => "mfa_challenges",
            Self::LoginDevices => "login_devices",
            Self::SecurityEvents => "security_events",
        }
    }

    fn keep(self, r: &Retention) -> i64 {
        match self {
            Self::Sessions => r.sessions_ms,
            Self::RefreshTokens | Self::EmailTokens | Self::MfaChallenges => r.tokens_ms,
            Self::LoginDevices => r.devices_ms,
            Self::SecurityEvents => r.events_ms,
        }
    }

    /// Counts the old rows; `$1` is the cut-off (Unix ms).
    fn count(self) -> AnyQuery {
        match self {
            Self::Sessions => sqlx::query(
                "SELECT COUNT(*) AS n FROM sessions WHERE COALESCE(ended_at, expires_at) < $1",
            ),
            Self::RefreshTokens => {
                sqlx::query("SELECT COUNT(*) AS n FROM refresh_tokens WHERE expires_at < $1")
            }
            Self::EmailTokens => {
                sqlx::query("SELECT COUNT(*) AS n FROM email_tokens WHERE expires_at < $1")
            }
            Self::MfaChallenges => {
                sqlx::query("SELECT COUNT(*) AS n FROM mfa_challenges WHERE expires_at < $1")
            }
            Self::LoginDevices => {
                sqlx::query("SELECT COUNT(*) AS n FROM login_devices WHERE last_seen_at < $1")
            }
            Self::SecurityEvents => {
                sqlx::query("SELECT COUNT(*) AS n FROM security_events WHERE at < $1")
            }
        }
    }

    /// Deletes at most `$2` old rows; `$1` is the cut-off.
    fn delete(self) -> AnyQuery {
        match self {
            Self::Sessions => sqlx::query(
                "DELETE FROM sessions WHERE id IN \
                 (SELECT id FROM sessions WHERE COALESCE(ended_at, expires_at) < $1 LIMIT $2)",
            ),
            Self::RefreshTokens => sqlx::query(
                "DELETE FROM refresh_tokens WHERE token_hash IN \
                 (SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2)",
            ),
            Self::EmailTokens => sqlx::query(
                "DELETE FROM email_tokens WHERE token_hash IN \
                 (SELECT token_hash FROM email_tokens WHERE expires_at < $1 LIMIT $2)",
            ),
            Self::MfaChallenges => sqlx::query(
                "DELETE FROM mfa_challenges WHERE token_hash IN \
                 (SELECT token_hash FROM mfa_challenges WHERE expires_at < $1 LIMIT $2)",
            ),
            Self::LoginDevices => sqlx::query(
                "DELETE FROM login_devices WHERE (user_id, device) IN \
                 (SELECT user_id, device FROM login_devices WHERE last_seen_at < $1 LIMIT $2)",
            ),
            Self::SecurityEvents => sqlx::query(
                "DELETE FROM security_events WHERE id IN \
                 (SELECT id FROM security_events WHERE at < $1 LIMIT $2)",
            ),
        }
    }
}

/// Rows per delete statement.
pub const BATCH: i64 = 1000;

/// What a run removed (or, dry, would remove), per table, in order.
pub type Report = Vec<(&'static str, u64)>;

/// Counts what [`run`] would delete at `now`, deleting nothing.
pub async fn dry_run(
    pool: &AnyPool,
    retention: &Retention,
    now: i64,
) -> Result<Report, sqlx::Error> {
    let mut report = Vec::new();
    for table in TABLES {
        let row = table
            .count()
            .bind(now.saturating_sub(table.keep(retention)))
            .fetch_one(pool)
            .await?;
        let n: i64 = row.try_get("n")?;
        report.push((table.name(), u64::try_from(n).unwrap_or(0)));
    }
    Ok(report)
}

/// Deletes every row past its retention at `now`, `batch` rows per
/// statement.
pub async fn run(
    pool: &AnyPool,
    retention: &Retention,
    now: i64,
    batch: i64,
) -> Result<Report, sqlx::Error> {
    let mut report = Vec::new();
    for table in TABLES {
        let cutoff = now.saturating_sub(table.keep(retention));
        let mut total = 0u64;
        loop {
            let done = table
                .delete()
                .bind(cutoff)
                .bind(batch)
                .execute(pool)
                .await?;
            total += done.rows_affected();
            if i64::try_from(done.rows_affected()).unwrap_or(i64::MAX) < batch {
                break;
            }
            // Let other statements through between batches.
            tokio::task::yield_now().await;
        }
        report.push((table.name(), total));
    }
    Ok(report)
}

/// A consistent copy of the SQLite database at `to` (SQLite's
/// `VACUUM INTO`), taken while the server may be writing. Fails if `to`
/// exists.
pub async fn backup_sqlite(pool: &AnyPool, to: &str) -> Result<(), sqlx::Error> {
    sqlx::query("VACUUM INTO $1").bind(to).execute(pool).await?;
    Ok(())
}
