//! Typed settings, loaded once at start-up and checked as a whole.
//!
//! Layers, lowest first: built-in defaults, a TOML file (`--config` or
//! `PALISADE_CONFIG`), `.env`, the environment, then command-line flags.
//! Each setting is declared once, where its section reads it (for example
//! [`ServerSettings`] in `server.rs`): TOML key, environment variable,
//! default, bounds and help. From those declarations come the loader, the
//! redacted TOML of `check-config` and the table of `docs/configuration.md`
//! ([`docs_table`]). All problems are collected and reported together; the
//! process refuses to start while any remains. This is the only module
//! that reads the environment.

mod auth;
mod cors;
mod database;
mod gateway;
mod headers;
mod mail;
mod metrics;
mod rate_limit;
mod reader;
mod redis;
mod render;
mod retention;
pub mod secret;
mod server;
mod setting;
mod sources;
pub mod spec;
#[cfg(test)]
mod tests;
mod warnings;

pub use auth::{Argon2Settings, AuthSettings, JwtAlgorithm};
pub use cors::{AllowedOrigins, CorsSettings};
pub use database::DatabaseSettings;
pub use gateway::{GatewayRoute, GatewaySettings, RouteAuth, RoutePattern};
pub use headers::HeaderSettings;
pub use mail::{MailSettings, SmtpSecurity, SmtpServer};
pub use metrics::MetricsSettings;
pub use rate_limit::RateLimitSettings;
pub use redis::RedisSettings;
pub use retention::RetentionSettings;
pub use secret::SigningSecret;
pub use server::{ForwardedHeader, LogFormat, LogSettings, ServerSettings, TlsFiles};
pub use sources::Sources;

use reader::Reader;
use render::Effective;
use sources::{CONFIG_FILE_ENV, Layers};

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
    pub redis: RedisSettings,
    pub mail: MailSettings,
    pub metrics: MetricsSettings,
    pub retention: RetentionSettings,
    pub gateway: GatewaySettings,
    effective: Effective,
}

impl Settings {
    /// Loads and validates the settings from `sources`, listing every
    /// problem found.
    pub fn load(sources: &Sources) -> Result<Self, Vec<String>> {
        let mut reader = Reader::new(Layers::read(sources));
        let settings = Self::read(&mut reader);
        let mut done = reader.finish();
        match settings {
            Some(settings) if done.problems.is_empty() => Ok(Self {
                effective: done.effective,
                ..settings
            }),
            Some(_) => Err(done.problems),
            None => {
                done.problems
                    .push("settings: a built-in default is invalid".into());
                Err(done.problems)
            }
        }
    }

    /// The effective configuration as TOML, secrets shown as `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        self.effective
            .to_toml()
            .unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// Reads every section; `None` only when a built-in default is broken.
    fn read(r: &mut Reader) -> Option<Self> {
        let server = ServerSettings::read(r);
        let log = LogSettings::read(r);
        let database = DatabaseSettings::read(r);
        let auth = AuthSettings::read(r);
        if let (Some(database), Some(auth)) = (&database, &auth)
            && database.is_shared()
            && auth.jwt_secret.is_none()
        {
            r.problem("auth.jwt_secret", "PALISADE_JWT_SECRET (or PALISADE_JWT_SECRET_FILE) is required with a shared database, so every instance signs with the same secret");
        }
        if let (Some(database), Some(auth)) = (&database, &auth)
            && database.is_shared()
            && auth.mfa_key.is_none()
        {
            r.problem("auth.mfa_key", "PALISADE_MFA_KEY (or PALISADE_MFA_KEY_FILE) is required with a shared database, so every instance can read the second factors");
        }
        let cors = CorsSettings::read(r);
        let headers = HeaderSettings::read(r);
        let rate_limit = RateLimitSettings::read(r);
        let redis = RedisSettings::read(r);
        let mail = MailSettings::read(r);
        let metrics = MetricsSettings::read(r);
        let retention = RetentionSettings::read(r);
        let gateway = GatewaySettings::read(r);
        if let (Some(gateway), Some(rate_limit)) = (&gateway, &rate_limit) {
            let policies: Vec<(&str, bool)> = rate_limit
                .policies
                .iter()
                .map(|(name, spec)| (name.as_str(), spec.key.account))
                .collect();
            gateway.check_policies(r, &policies);
        }
        if let (Some(redis), Some(auth)) = (&redis, &auth)
            && redis.url.is_some()
            && auth.jwt_secret.is_none()
        {
            r.problem("auth.jwt_secret", "PALISADE_JWT_SECRET (or PALISADE_JWT_SECRET_FILE) is required with Redis, so every instance derives the same rate-limit key digests");
        }
        let server = server?;
        let mut auth = auth?;
        if auth.issuer.is_empty() {
            auth.issuer = server
                .public_url
                .clone()
                .unwrap_or_else(|| "palisade".to_owned());
        }
        Some(Self {
            server,
            log: log?,
            database: database?,
            auth,
            cors: cors?,
            headers: headers?,
            rate_limit: rate_limit?,
            redis: redis?,
            mail: mail?,
            metrics: metrics?,
            retention: retention?,
            gateway: gateway?,
            effective: Effective::default(),
        })
    }
}

/// The configuration reference of `docs/configuration.md`, as a markdown
/// table: every setting, from its declaration.
pub fn docs_table() -> String {
    let mut table = setting::TABLE_HEADER.to_owned();
    table.push_str(&format!(
        "| `{CONFIG_FILE_ENV}` | (none) | (unset) | The TOML settings file; `--config` takes precedence. |\n"
    ));
    for (setting, kind) in declarations() {
        table.push_str(&setting.row(kind));
    }
    table
}

/// Every declared setting, in order: what reading the settings from no
/// sources at all asks for.
fn declarations() -> Vec<(setting::Setting, setting::Kind)> {
    let mut reader = Reader::new(Layers::default());
    let _ = Settings::read(&mut reader);
    reader.finish().seen
}
