//! A recorded security event, as storage reads it and the audit-log API
//! sends it.

use serde::Serialize;

use super::user::as_rfc3339;

// Serialized as the API sends it: `at` as an RFC 3339 UTC string.
/// One security event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: String,
    /// RFC 3339, UTC.
    #[serde(serialize_with = "as_rfc3339")]
    #[schema(value_type = String)]
    pub at: i64,
    pub event: String,
    /// Whom the event is about.
    pub user_id: Option<String>,
    /// Who did it (`cli` for operator commands).
    pub actor_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Internal detail, e.g. why a login failed.
    pub detail: Option<String>,
}
