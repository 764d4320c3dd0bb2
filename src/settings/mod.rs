//! Typed settings, loaded once at start-up and checked as a whole.
//!
//! Layers, lowest first: built-in defaults, a TOML file (`--config` or
//! `PALISADE_CONFIG`), `.env`, the environment, then command-line flags.
//! Every variable is listed in [`vars::VARS`]. All problems are collected and
//! reported together; the process refuses to start while any remains.
//! This is the only module that reads the environment.

mod load;
mod raw;
pub mod secret;
pub mod spec;
mod validate;
pub mod vars;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use ipnet::IpNet;
use secrecy::SecretString;

pub use load::Sources;
pub use raw::RawSettings;
pub use secret::SigningSecret;

use crate::domain::Role;
use spec::Spec;

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerSettings,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub cors: CorsSettings,
    pub headers: HeaderSettings,
    pub rate_limit: RateLimitSettings,
    raw: RawSettings,
}

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub body_limit: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub forwarded_header: ForwardedHeader,
    pub ipv6_prefix: u8,
    pub docs: bool,
}

/// The header trusted proxies put the client chain in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, most load balancers).
    XForwardedFor,
    /// `Forwarded: for=` (RFC 7239).
    Forwarded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `None` means the embedded SQLite file in the data folder.
    pub url: Option<SecretString>,
    pub max_connections: u32,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `None` means "generate one into the data folder on first start".
    pub jwt_secret: Option<SigningSecret>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_lifetime: Duration,
    pub refresh_reuse_grace: Duration,
    pub leeway: Duration,
    pub self_registration_roles: Vec<Role>,
    pub password_composition_rules: bool,
    pub argon2: Argon2Settings,
    /// Hashes computed at once.
    pub hash_concurrency: usize,
    /// Hashes allowed to wait.
    pub hash_queue: usize,
    pub failed_login_free: u32,
    pub failed_login_max_delay: Duration,
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin, never together with credentials.
    Any,
    /// Exact, lower-cased `scheme://host[:port]` origins.
    List(Vec<HeaderValue>),
}

#[derive(Debug, Clone)]
pub struct CorsSettings {
    pub allowed_origins: AllowedOrigins,
    pub allow_credentials: bool,
    pub allowed_methods: Vec<Method>,
    pub allowed_headers: Vec<HeaderName>,
    pub max_age: Duration,
}

/// The security headers stamped on every response, already rendered.
#[derive(Debug, Clone)]
pub struct HeaderSettings {
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Policy names applied to every route not in `routes`.
    pub default: Vec<String>,
    pub policies: BTreeMap<String, Spec>,
    /// `"METHOD /path"` to policy names.
    pub routes: BTreeMap<String, Vec<String>>,
    pub max_keys: usize,
    pub sweep_interval: Duration,
}

impl Settings {
    /// Loads and validates the settings from `sources`, listing every
    /// problem found.
    pub fn load(sources: &Sources) -> Result<Self, Vec<String>> {
        let raw = load::load_raw(sources)?;
        validate::validate(raw)
    }

    /// The effective configuration as TOML, secrets shown as `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(&self.raw).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Things that are allowed but deserve an operator's second look.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.cors.allowed_origins == AllowedOrigins::List(Vec::new()) {
            out.push(
                "cors.allowed_origins is empty: no browser page on another origin can call the API"
                    .into(),
            );
        }
        if self.cors.allowed_origins == AllowedOrigins::Any {
            out.push("cors.allowed_origins is `*`: any web page may call the API".into());
        }
        if !self.raw.headers.hsts {
            out.push("headers.hsts is off: browsers will not be told to insist on HTTPS".into());
        }
        if self.server.docs {
            out.push(
                "server.docs is on: /docs and /openapi.json describe the API to anyone".into(),
            );
        }
        let level = self.log.level.to_ascii_lowercase();
        if level.contains("debug") || level.contains("trace") {
            out.push(format!(
                "log.level is {:?}: verbose logs may hold personal data",
                self.log.level
            ));
        }
        if !self.rate_limit.enabled {
            out.push("rate_limit.enabled is false: nothing limits brute force or floods".into());
        }
        if self.server.bind.ip().is_unspecified() && self.server.trusted_proxies.is_empty() {
            out.push("listening on all interfaces with no trusted proxies: make sure TLS terminates in front".into());
        }
        let a = self.auth.argon2;
        if a.memory_kib < 19_456 || a.iterations < 2 {
            out.push(format!(
                "auth.argon2_* (m={} KiB, t={}) is below OWASP's m=19456 KiB, t=2",
                a.memory_kib, a.iterations
            ));
        }
        if self.auth.password_composition_rules {
            out.push("auth.password_composition_rules is on: NIST SP 800-63B and ASVS 5.0 advise against composition rules".into());
        }
        if self.auth.jwt_secret.is_none() {
            out.push(format!(
                "no signing secret configured: one is generated once into {}",
                secret::secret_path(&self.server.data_dir).display()
            ));
        }
        out
    }
}
