//! The administration API: listing, inspecting, changing and deleting
//! users, and reading the audit log. Every handler takes an [`AdminUser`],
//! so none can run for a caller below `admin`.
//!
//! [`AdminUser`]: crate::auth::AdminUser

pub mod audit_log;
pub mod change;
pub mod rules;
pub mod users;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, FieldError};

/// Paging, shared by the list routes.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub page: i64,
    pub limit: i64,
}

impl Paging {
    /// `page >= 1` (default 1), `1 <= limit <= 100` (default 20).
    pub fn parse(page: Option<i64>, limit: Option<i64>, errors: &mut Vec<FieldError>) -> Self {
        let page = page.unwrap_or(1);
        let limit = limit.unwrap_or(20);
        if page < 1 {
            errors.push(FieldError::new("page", "must be 1 or more"));
        }
        if !(1..=100).contains(&limit) {
            errors.push(FieldError::new("limit", "must be from 1 to 100"));
        }
        Self { page, limit }
    }

    pub fn offset(self) -> i64 {
        (self.page - 1).saturating_mul(self.limit)
    }
}

/// A page of items.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}

/// The body of `PATCH /users/{user_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `user`, `editor` or (by a super_admin) `admin`.
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

fn invalid(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}
