//! Authentication: password hashing, access tokens, refresh tokens, the
//! `AuthUser` extractor, failed-login back-off and the audit trail.

pub mod audit;
pub mod extractor;
pub mod hashing;
pub mod jwt;
pub mod refresh;
pub mod roles;
pub mod throttle;

pub use extractor::AuthUser;
pub use roles::{AdminUser, RequireRole};
