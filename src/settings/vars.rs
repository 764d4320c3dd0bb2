//! The table of every setting: its TOML key, its environment variable, its
//! kind, its default and what it does.
//!
//! This table is the single source for the environment layer of the loader,
//! for `check-config`, and for the configuration table in README.md (a test
//! checks that README.md names every variable listed here).

/// How an environment value is turned into a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Taken as it is.
    Str,
    /// A secret string: taken as it is, never printed.
    Secret,
    /// A whole number.
    Int,
    /// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A comma-separated list.
    List,
    /// `key=value` pairs separated by `;`.
    Map,
}

/// One documented setting.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    /// The environment variable.
    pub env: &'static str,
    /// The dotted TOML key.
    pub key: &'static str,
    pub kind: Kind,
    /// The default, as shown to people.
    pub default: &'static str,
    pub help: &'static str,
}

const fn var(
    env: &'static str,
    key: &'static str,
    kind: Kind,
    default: &'static str,
    help: &'static str,
) -> Var {
    Var {
        env,
        key,
        kind,
        default,
        help,
    }
}

/// The environment variable that names the TOML settings file.
pub const CONFIG_FILE_ENV: &str = "PALISADE_CONFIG";

/// Every setting, in the order the README lists them.
pub const VARS: &[Var] = &[
    var(
        "PALISADE_BIND",
        "server.bind",
        Kind::Str,
        "127.0.0.1:8000",
        "Listen address (`--bind`).",
    ),
    var(
        "PALISADE_DATA_DIR",
        "server.data_dir",
        Kind::Str,
        "data",
        "Folder for the embedded database and the generated signing secret (`--data-dir`).",
    ),
    var(
        "PALISADE_REQUEST_TIMEOUT",
        "server.request_timeout",
        Kind::Str,
        "30s",
        "Longest time a request may take before it is answered 503.",
    ),
    var(
        "PALISADE_SHUTDOWN_TIMEOUT",
        "server.shutdown_timeout",
        Kind::Str,
        "10s",
        "How long a graceful shutdown waits for in-flight requests.",
    ),
    var(
        "PALISADE_BODY_LIMIT",
        "server.body_limit",
        Kind::Int,
        "1048576",
        "Largest request body in bytes (413 above it).",
    ),
    var(
        "PALISADE_TRUSTED_PROXIES",
        "server.trusted_proxies",
        Kind::List,
        "(empty)",
        "Networks (CIDR) whose `X-Forwarded-For`/`Forwarded` headers are believed.",
    ),
    var(
        "PALISADE_FORWARDED_HEADER",
        "server.forwarded_header",
        Kind::Str,
        "x-forwarded-for",
        "Which header trusted proxies set: `x-forwarded-for` or `forwarded` (RFC 7239); the other is ignored.",
    ),
    var(
        "PALISADE_IPV6_PREFIX",
        "server.ipv6_prefix",
        Kind::Int,
        "56",
        "IPv6 clients are keyed by this prefix length (16..=128).",
    ),
    var(
        "PALISADE_DOCS",
        "server.docs",
        Kind::Bool,
        "true",
        "Serve `/openapi.json` and Swagger UI at `/docs`.",
    ),
    var(
        "PALISADE_LOG_FORMAT",
        "log.format",
        Kind::Str,
        "human",
        "`human` or `json`.",
    ),
    var(
        "PALISADE_LOG_LEVEL",
        "log.level",
        Kind::Str,
        "info",
        "A tracing filter, e.g. `info` or `palisade=debug,tower_http=info`.",
    ),
    var(
        "DATABASE_URL",
        "database.url",
        Kind::Secret,
        "sqlite in the data folder",
        "Database URL.",
    ),
    var(
        "DATABASE_URL_FILE",
        "database.url_file",
        Kind::Str,
        "(unset)",
        "Read `DATABASE_URL` from this file.",
    ),
    var(
        "PALISADE_DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
        Kind::Int,
        "8",
        "Size of the connection pool.",
    ),
    var(
        "PALISADE_JWT_SECRET",
        "auth.jwt_secret",
        Kind::Secret,
        "generated once into the data folder",
        "HS256 signing secret, at least 32 bytes, not a placeholder.",
    ),
    var(
        "PALISADE_JWT_SECRET_FILE",
        "auth.jwt_secret_file",
        Kind::Str,
        "(unset)",
        "Read the signing secret from this file.",
    ),
    var(
        "PALISADE_JWT_ISSUER",
        "auth.issuer",
        Kind::Str,
        "palisade",
        "The `iss` of access tokens, checked on every request.",
    ),
    var(
        "PALISADE_JWT_AUDIENCE",
        "auth.audience",
        Kind::Str,
        "palisade",
        "The `aud` of access tokens, checked on every request.",
    ),
    var(
        "PALISADE_ACCESS_TOKEN_TTL",
        "auth.access_token_ttl",
        Kind::Str,
        "15m",
        "Lifetime of an access token.",
    ),
    var(
        "PALISADE_REFRESH_TOKEN_TTL",
        "auth.refresh_token_ttl",
        Kind::Str,
        "7d",
        "Lifetime of a refresh token (each use rotates it).",
    ),
    var(
        "PALISADE_SESSION_LIFETIME",
        "auth.session_lifetime",
        Kind::Str,
        "30d",
        "Absolute lifetime of a login session, however often it is refreshed.",
    ),
    var(
        "PALISADE_REFRESH_REUSE_GRACE",
        "auth.refresh_reuse_grace",
        Kind::Str,
        "0s",
        "How long a just-rotated refresh token may be presented again without ending its session (racing clients).",
    ),
    var(
        "PALISADE_JWT_LEEWAY",
        "auth.leeway",
        Kind::Str,
        "30s",
        "Clock-skew allowance for `exp` and `nbf`.",
    ),
    var(
        "PALISADE_SELF_REGISTRATION_ROLES",
        "auth.self_registration_roles",
        Kind::List,
        "user,editor",
        "Roles a user may choose at registration (never admin or super_admin).",
    ),
    var(
        "PALISADE_PASSWORD_COMPOSITION_RULES",
        "auth.password_composition_rules",
        Kind::Bool,
        "false",
        "Also require an upper-case letter, a lower-case letter, a digit and one of `!@#$%^&*` (discouraged by NIST SP 800-63B).",
    ),
    var(
        "PALISADE_ARGON2_MEMORY_KIB",
        "auth.argon2_memory_kib",
        Kind::Int,
        "19456",
        "Argon2id memory cost in KiB (OWASP: 19456).",
    ),
    var(
        "PALISADE_ARGON2_ITERATIONS",
        "auth.argon2_iterations",
        Kind::Int,
        "2",
        "Argon2id time cost (OWASP: 2).",
    ),
    var(
        "PALISADE_ARGON2_PARALLELISM",
        "auth.argon2_parallelism",
        Kind::Int,
        "1",
        "Argon2id lanes (OWASP: 1).",
    ),
    var(
        "PALISADE_HASH_CONCURRENCY",
        "auth.hash_concurrency",
        Kind::Int,
        "0 (one per core)",
        "Password hashes computed at once.",
    ),
    var(
        "PALISADE_HASH_QUEUE",
        "auth.hash_queue",
        Kind::Int,
        "64",
        "Hashes allowed to wait for a worker; past it, 503.",
    ),
    var(
        "PALISADE_FAILED_LOGIN_FREE",
        "auth.failed_login_free",
        Kind::Int,
        "5",
        "Consecutive failed logins per account name before back-off starts.",
    ),
    var(
        "PALISADE_FAILED_LOGIN_MAX_DELAY",
        "auth.failed_login_max_delay",
        Kind::Str,
        "15m",
        "Longest back-off after repeated failed logins (never a permanent lockout).",
    ),
    var(
        "PALISADE_CORS_ALLOWED_ORIGINS",
        "cors.allowed_origins",
        Kind::List,
        "(empty: no cross-origin access)",
        "Exact origins (`scheme://host[:port]`) allowed to call the API from a browser.",
    ),
    var(
        "PALISADE_CORS_ALLOW_CREDENTIALS",
        "cors.allow_credentials",
        Kind::Bool,
        "false",
        "Send `Access-Control-Allow-Credentials: true`. Refused together with `*`.",
    ),
    var(
        "PALISADE_CORS_ALLOWED_METHODS",
        "cors.allowed_methods",
        Kind::List,
        "GET,POST,PUT,PATCH,DELETE",
        "Methods allowed cross-origin.",
    ),
    var(
        "PALISADE_CORS_ALLOWED_HEADERS",
        "cors.allowed_headers",
        Kind::List,
        "authorization,content-type",
        "Request headers allowed cross-origin.",
    ),
    var(
        "PALISADE_CORS_MAX_AGE",
        "cors.max_age",
        Kind::Int,
        "3600",
        "Seconds a browser may cache a preflight answer.",
    ),
    var(
        "PALISADE_HSTS",
        "headers.hsts",
        Kind::Bool,
        "true",
        "Send `Strict-Transport-Security`.",
    ),
    var(
        "PALISADE_HSTS_MAX_AGE",
        "headers.hsts_max_age",
        Kind::Int,
        "63072000",
        "HSTS `max-age` in seconds.",
    ),
    var(
        "PALISADE_HSTS_INCLUDE_SUBDOMAINS",
        "headers.hsts_include_subdomains",
        Kind::Bool,
        "true",
        "HSTS `includeSubDomains`.",
    ),
    var(
        "PALISADE_HSTS_PRELOAD",
        "headers.hsts_preload",
        Kind::Bool,
        "false",
        "HSTS `preload` (only once the domain is on the preload list).",
    ),
    var(
        "PALISADE_CONTENT_SECURITY_POLICY",
        "headers.content_security_policy",
        Kind::Str,
        "default-src 'none'; frame-ancestors 'none'",
        "`Content-Security-Policy` of API responses (empty: not sent).",
    ),
    var(
        "PALISADE_FRAME_OPTIONS",
        "headers.frame_options",
        Kind::Str,
        "DENY",
        "`X-Frame-Options` (empty: not sent).",
    ),
    var(
        "PALISADE_CONTENT_TYPE_OPTIONS",
        "headers.content_type_options",
        Kind::Str,
        "nosniff",
        "`X-Content-Type-Options` (empty: not sent).",
    ),
    var(
        "PALISADE_REFERRER_POLICY",
        "headers.referrer_policy",
        Kind::Str,
        "strict-origin-when-cross-origin",
        "`Referrer-Policy` (empty: not sent).",
    ),
    var(
        "PALISADE_PERMISSIONS_POLICY",
        "headers.permissions_policy",
        Kind::Str,
        "camera=(), microphone=(), geolocation=()",
        "`Permissions-Policy` (empty: not sent).",
    ),
    var(
        "PALISADE_CROSS_ORIGIN_OPENER_POLICY",
        "headers.cross_origin_opener_policy",
        Kind::Str,
        "same-origin",
        "`Cross-Origin-Opener-Policy` (empty: not sent).",
    ),
    var(
        "PALISADE_CROSS_ORIGIN_RESOURCE_POLICY",
        "headers.cross_origin_resource_policy",
        Kind::Str,
        "same-origin",
        "`Cross-Origin-Resource-Policy` (empty: not sent).",
    ),
    var(
        "PALISADE_XSS_PROTECTION",
        "headers.xss_protection",
        Kind::Str,
        "0",
        "`X-XSS-Protection` (`0` disables the harmful legacy filter; empty: not sent).",
    ),
    var(
        "PALISADE_CACHE_CONTROL",
        "headers.cache_control",
        Kind::Str,
        "no-store",
        "`Cache-Control` for responses that set none.",
    ),
    var(
        "PALISADE_RATE_LIMIT_ENABLED",
        "rate_limit.enabled",
        Kind::Bool,
        "true",
        "Turn rate limiting on or off.",
    ),
    var(
        "PALISADE_RATE_LIMIT_DEFAULT",
        "rate_limit.default",
        Kind::Str,
        "default",
        "Policy name(s), comma-separated, for every route not in `rate_limit.routes`.",
    ),
    var(
        "PALISADE_RATE_LIMIT_POLICIES",
        "rate_limit.policies",
        Kind::Map,
        "see below",
        "Named policies, `name=N/period per key;...`, merged over the defaults.",
    ),
    var(
        "PALISADE_RATE_LIMIT_ROUTES",
        "rate_limit.routes",
        Kind::Map,
        "see below",
        "Route to policy names, `METHOD /path=name[,name];...`, merged over the defaults.",
    ),
    var(
        "PALISADE_RATE_LIMIT_MAX_KEYS",
        "rate_limit.max_keys",
        Kind::Int,
        "1000000",
        "Most keys one policy keeps in memory; past it, the keys closest to a full bucket are evicted first.",
    ),
    var(
        "PALISADE_RATE_LIMIT_SWEEP_INTERVAL",
        "rate_limit.sweep_interval",
        Kind::Str,
        "30s",
        "How often keys that no longer limit anything are dropped.",
    ),
];
