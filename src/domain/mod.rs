//! Domain types that can only hold valid values: each has one constructor
//! that checks its input, so an invalid email, username, name, password or
//! role cannot exist past the edge of the application; and the records
//! everything above storage sees: [`User`], the account without its
//! password hash, and [`AuditEvent`].

mod audit_event;
pub mod email;
mod name;
pub mod password;
mod role;
mod scope;
mod user;
mod username;

pub use audit_event::AuditEvent;
pub use email::Email;
pub use name::Name;
pub use password::{Password, PasswordPolicy};
pub use role::Role;
pub use scope::Scope;
pub use user::{User, rfc3339};
pub use username::Username;
