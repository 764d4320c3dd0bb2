//! Accounts: registration, the caller's profile, password change, account
//! deletion and the caller's sessions.

pub mod profile;
pub mod register;
pub mod sessions;
