//! The integration tests: real HTTP over loopback sockets against servers
//! started on port 0, each with its own data folder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod admin;
mod audit;
mod binary;
mod config_docs;
mod cors;
mod docs;
mod errors;
mod headers;
mod helpers;
mod jwt_attacks;
mod limits;
mod login_limits;
mod sql_hygiene;
mod tokens;
