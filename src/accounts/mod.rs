//! Accounts: registration, the caller's profile, password change and
//! account deletion.

pub mod profile;
pub mod register;
