//! The `security_events` table: the audit trail. Never a password or a
//! token; the failure reason is kept here and never sent to clients.

use sqlx::AnyPool;

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

pub async fn insert(pool: &AnyPool, e: &NewEvent<'_>, now: i64) -> Result<(), sqlx::Error> {
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
    .execute(pool)
    .await?;
    Ok(())
}
