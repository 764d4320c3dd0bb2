//! Palisade: a secure-by-default HTTP API server and toolkit.
//!
//! The module list is the architecture (see `docs/architecture.md`):
//! cross-cutting HTTP layers in [`http`] and [`ratelimit`] know nothing
//! about users or databases; the domain modules [`accounts`] and
//! [`tokens`] own their routes, built on [`auth`] and [`domain`]; all SQL
//! lives in [`storage`]; [`settings`] is the only place that reads the
//! environment.

pub mod accounts;
pub mod admin;
pub mod admin_cli;
pub mod api_keys;
pub mod auth;
pub mod cache;
pub mod check_config;
pub mod cli;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod http;
pub mod mail;
pub mod mfa;
pub mod ratelimit;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tokens;

pub use error::{ApiError, Result};
pub use routes::router;
pub use startup::Application;
pub use state::AppState;
