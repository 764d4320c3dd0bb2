//! The settings as they are written (TOML shapes, strings for durations and
//! addresses), with their defaults. `validate` turns them into typed settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole settings file. Unknown keys are refused so that a typo cannot
/// silently leave a control at its default.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RawSettings {
    pub server: RawServer,
    pub log: RawLog,
    pub database: RawDatabase,
    pub auth: RawAuth,
    pub cors: RawCors,
    pub headers: RawHeaders,
    pub rate_limit: RawRateLimit,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    pub bind: String,
    pub data_dir: String,
    pub request_timeout: String,
    pub shutdown_timeout: String,
    pub body_limit: i64,
    pub trusted_proxies: Vec<String>,
    pub forwarded_header: String,
    pub ipv6_prefix: i64,
    pub docs: bool,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8000".into(),
            data_dir: "data".into(),
            request_timeout: "30s".into(),
            shutdown_timeout: "10s".into(),
            body_limit: 1024 * 1024,
            trusted_proxies: Vec::new(),
            forwarded_header: "x-forwarded-for".into(),
            ipv6_prefix: 56,
            docs: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLog {
    pub format: String,
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: "human".into(),
            level: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawDatabase {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<Redacted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_file: Option<String>,
    pub max_connections: i64,
}

impl Default for RawDatabase {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAuth {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret: Option<Redacted>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_secret_file: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl: String,
    pub refresh_token_ttl: String,
    pub session_lifetime: String,
    pub refresh_reuse_grace: String,
    pub leeway: String,
    pub self_registration_roles: Vec<String>,
    pub password_composition_rules: bool,
    pub argon2_memory_kib: i64,
    pub argon2_iterations: i64,
    pub argon2_parallelism: i64,
    pub hash_concurrency: i64,
    pub hash_queue: i64,
    pub failed_login_free: i64,
    pub failed_login_max_delay: String,
}

impl Default for RawAuth {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_secret_file: None,
            issuer: "palisade".into(),
            audience: "palisade".into(),
            access_token_ttl: "15m".into(),
            refresh_token_ttl: "7d".into(),
            session_lifetime: "30d".into(),
            refresh_reuse_grace: "0s".into(),
            leeway: "30s".into(),
            self_registration_roles: vec!["user".into(), "editor".into()],
            password_composition_rules: false,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            hash_concurrency: 0,
            hash_queue: 64,
            failed_login_free: 5,
            failed_login_max_delay: "15m".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawCors {
    pub allowed_origins: Vec<String>,
    pub allow_credentials: bool,
    pub allowed_methods: Vec<String>,
    pub allowed_headers: Vec<String>,
    pub max_age: i64,
}

impl Default for RawCors {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            allow_credentials: false,
            allowed_methods: ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .map(String::from)
                .to_vec(),
            allowed_headers: ["authorization", "content-type"].map(String::from).to_vec(),
            max_age: 3600,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawHeaders {
    pub hsts: bool,
    pub hsts_max_age: i64,
    pub hsts_include_subdomains: bool,
    pub hsts_preload: bool,
    pub content_security_policy: String,
    pub frame_options: String,
    pub content_type_options: String,
    pub referrer_policy: String,
    pub permissions_policy: String,
    pub cross_origin_opener_policy: String,
    pub cross_origin_resource_policy: String,
    pub xss_protection: String,
    pub cache_control: String,
}

impl Default for RawHeaders {
    fn default() -> Self {
        Self {
            hsts: true,
            hsts_max_age: 63_072_000,
            hsts_include_subdomains: true,
            hsts_preload: false,
            content_security_policy: "default-src 'none'; frame-ancestors 'none'".into(),
            frame_options: "DENY".into(),
            content_type_options: "nosniff".into(),
            referrer_policy: "strict-origin-when-cross-origin".into(),
            permissions_policy: "camera=(), microphone=(), geolocation=()".into(),
            cross_origin_opener_policy: "same-origin".into(),
            cross_origin_resource_policy: "same-origin".into(),
            xss_protection: "0".into(),
            cache_control: "no-store".into(),
        }
    }
}

/// Policy names are keys of `policies`; `routes` maps `"METHOD /path"` to
/// one name or a comma-separated list of names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawRateLimit {
    pub enabled: bool,
    pub default: String,
    pub policies: BTreeMap<String, String>,
    pub routes: BTreeMap<String, String>,
    pub max_keys: i64,
    pub sweep_interval: String,
}

/// The built-in policies: the seed's limits and the contract's defaults.
pub const DEFAULT_POLICIES: &[(&str, &str)] = &[
    ("default", "120/minute per ip"),
    ("data", "10/minute per ip"),
    ("login", "5/minute per ip"),
    ("register", "10/hour per ip"),
    ("ai", "10/hour per user"),
];

/// The built-in route table.
pub const DEFAULT_ROUTES: &[(&str, &str)] = &[
    ("GET /api/data", "data"),
    ("POST /auth/token", "login"),
    ("POST /auth/login", "login"),
    ("POST /auth/register", "register"),
    ("POST /ai/generate", "ai"),
];

impl Default for RawRateLimit {
    fn default() -> Self {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Self {
            enabled: true,
            default: "default".into(),
            policies: pairs(DEFAULT_POLICIES),
            routes: pairs(DEFAULT_ROUTES),
            max_keys: 1_000_000,
            sweep_interval: "30s".into(),
        }
    }
}

/// A string that is never printed: it serializes as `<redacted>`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Redacted(pub String);

impl Serialize for Redacted {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
