//! Palisade: a secure-by-default HTTP API server and toolkit.
//!
//! The module list is the architecture (see `docs/architecture.md`):
//! cross-cutting HTTP layers in [`http`] and [`ratelimit`] know nothing
//! about users or databases; [`routes`] own the endpoints; [`settings`] is
//! the only place that reads the environment.

pub mod check_config;
pub mod cli;
pub mod error;
pub mod http;
pub mod ratelimit;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use error::{ApiError, Result};
pub use startup::Application;
pub use state::AppState;
