//! The integration tests: real HTTP over loopback sockets against servers
//! started on port 0, each with its own data folder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod admin;
mod api_keys;
mod audit;
mod binary;
mod browser;
mod config_docs;
mod connections;
mod cors;
mod database;
mod docs;
mod errors;
mod faults;
mod gateway;
mod generated_client;
mod headers;
mod helpers;
mod import;
mod jwt_attacks;
mod layering;
mod limits;
mod login_limits;
mod mail;
mod metrics;
mod mfa;
mod oauth2_clients;
mod postgres_tls;
mod proxy;
mod prune;
// The private redis-server of the limiter's own tests, shared here.
#[allow(dead_code)]
#[path = "../../src/ratelimit/tests/server.rs"]
mod redis_server;
mod redis_tls;
mod scale_out;
mod schemathesis;
mod session_cache;
mod sessions;
mod signing;
mod smtp;
mod sql_hygiene;
mod text;
mod tls;
mod tokens;
