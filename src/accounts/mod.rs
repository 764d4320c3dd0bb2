//! Accounts: registration, the caller's profile, password change, account
//! deletion, the caller's sessions, email verification and password
//! reset.

pub mod email;
pub mod profile;
pub mod register;
pub mod sessions;
