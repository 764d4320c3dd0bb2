//! The `security_events` table: the audit trail. Never a password or a
//! token; the failure reason is kept here and never sent to clients.

use sqlx::{Any, AnyPool, Executor};

use crate::domain::AuditEvent;

/// One event to record.
#[derive(Debug, Default, Clone)]
pub struct NewEvent<'a> {
    pub event: &'a str,
    pub user_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub ip: Option<String>,
    pub user_agent: Option<&'a str>,
    pub request_id: Option<String>,
    pub detail: Option<&'a str>,
}

pub async fn insert<'e>(
    ex: impl Executor<'e, Database = Any>,
    e: &NewEvent<'_>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO security_events (id, at, event, user_id, actor_id, ip, user_agent, request_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(super::new_id())
    .bind(now)
    .bind(e.event)
    .bind(e.user_id)
    .bind(e.actor_id)
    .bind(e.ip.as_deref())
    .bind(e.user_agent)
    .bind(e.request_id.as_deref())
    .bind(e.detail)
    .execute(ex)
    .await?;
    Ok(())
}

fn from_row(r: &sqlx::any::AnyRow) -> Result<AuditEvent, sqlx::Error> {
    use sqlx::Row;
    Ok(AuditEvent {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        event: r.try_get("event")?,
        user_id: r.try_get("user_id")?,
        actor_id: r.try_get("actor_id")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        request_id: r.try_get("request_id")?,
        detail: r.try_get("detail")?,
    })
}

/// A page of events, newest first, optionally about one user and/or of one
/// kind.
pub async fn list(
    pool: &AnyPool,
    user_id: Option<&str>,
    event: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditEvent>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, at, event, user_id, actor_id, ip, user_agent, request_id, detail FROM security_events \
         WHERE ($1 IS NULL OR user_id = $1 OR actor_id = $1) AND ($2 IS NULL OR event = $2) \
         ORDER BY at DESC, id DESC LIMIT $3 OFFSET $4",
    )
    .bind(user_id)
    .bind(event)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// How many events [`list`] would page through.
pub async fn count(
    pool: &AnyPool,
    user_id: Option<&str>,
    event: Option<&str>,
) -> Result<i64, sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM security_events \
         WHERE ($1 IS NULL OR user_id = $1 OR actor_id = $1) AND ($2 IS NULL OR event = $2)",
    )
    .bind(user_id)
    .bind(event)
    .fetch_one(pool)
    .await?;
    row.try_get("n")
}
