//! Loading as a whole: layers, defaults, problems, declarations.

use super::*;

pub(super) fn env(pairs: &[(&str, &str)]) -> Sources {
    Sources {
        env: pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        ..Sources::default()
    }
}

pub(super) fn with_file(toml: &str, mut sources: Sources) -> (tempfile::TempDir, Sources) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, toml).unwrap();
    sources.config_file = Some(path);
    (dir, sources)
}

pub(super) fn problems(sources: &Sources) -> Vec<String> {
    Settings::load(sources).err().unwrap()
}

/// Today's defaults, one `field: value` (as `Debug` shows it) a line.
const DEFAULTS: &str = r#"
    bind: 127.0.0.1:8000
    data_dir: "data"
    request_timeout: 30s
    shutdown_timeout: 10s
    body_limit: 1048576
    trusted_proxies: []
    forwarded_header: XForwardedFor
    ipv6_prefix: 56
    docs: true
    format: Human
    level: "info"
    url: None
    max_connections: 8
    jwt_secret: None
    issuer: "palisade"
    audience: "palisade"
    access_token_ttl: 900s
    refresh_token_ttl: 604800s
    session_lifetime: 2592000s
    refresh_reuse_grace: 0ns
    leeway: 30s
    self_registration_roles: [User, Editor]
    password_composition_rules: false
    argon2: Argon2Settings { memory_kib: 19456, iterations: 2, parallelism: 1 }
    hash_concurrency: 0
    hash_queue: 64
    failed_login_free: 5
    failed_login_max_delay: 900s
    allowed_origins: List([])
    allow_credentials: false
    allowed_methods: [GET, POST, PUT, PATCH, DELETE]
    allowed_headers: ["authorization", "content-type"]
    max_age: 3600s
    ("strict-transport-security", "max-age=63072000; includeSubDomains")
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'")
    ("x-frame-options", "DENY")
    ("x-content-type-options", "nosniff")
    ("referrer-policy", "strict-origin-when-cross-origin")
    ("permissions-policy", "camera=(), microphone=(), geolocation=()")
    ("cross-origin-opener-policy", "same-origin")
    ("cross-origin-resource-policy", "same-origin")
    ("x-xss-protection", "0")
    ("cache-control", "no-store")
    enabled: true
    default: ["default"]
    "GET /api/data": ["data"]
    "POST /ai/generate": ["ai"]
    "POST /auth/login": ["login"]
    "POST /auth/register": ["register"]
    "POST /auth/token": ["login"]
    max_keys: 1000000
    sweep_interval: 30s
    ai=10/hour per user
    data=10/minute per ip
    default=120/minute per ip
    login=5/minute per ip
    register=10/hour per ip
"#;

#[test]
fn the_defaults_are_valid_and_unchanged() {
    let mut s = Settings::load(&Sources::default()).unwrap();
    assert!(s.auth.hash_concurrency >= 1, "0 means one per core");
    s.auth.hash_concurrency = 0;
    let r = &s.rate_limit;
    let policies: Vec<String> = r.policies.iter().map(|(n, p)| format!("{n}={p}")).collect();
    let (server, log, db, auth, cors) = (&s.server, &s.log, &s.database, &s.auth, &s.cors);
    let shown = format!(
        "{server:?} {log:?} {db:?} {auth:?} {cors:?} {:?} {r:?}",
        s.headers
    );
    let shown = format!("{shown} {}", policies.join(" "));
    for line in DEFAULTS.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(shown.contains(line), "{line} is not in {shown}");
    }
    let counts = (s.headers.headers.len(), r.policies.len(), r.routes.len());
    assert_eq!(counts, (10, 7, 8));
}

#[test]
fn every_environment_variable_keeps_its_name_and_is_declared_once() {
    let declared = declarations();
    assert!(declared.iter().all(|(s, _)| !s.help.is_empty()));
    let mut keys: Vec<&str> = declared.iter().map(|(s, _)| s.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), declared.len(), "a TOML key is declared twice");
    // Renaming a variable silently breaks deployments: these are the names
    // every release so far has read.
    let names = "BIND DATA_DIR REQUEST_TIMEOUT SHUTDOWN_TIMEOUT BODY_LIMIT TRUSTED_PROXIES \
        FORWARDED_HEADER IPV6_PREFIX DOCS LOG_FORMAT LOG_LEVEL DATABASE_MAX_CONNECTIONS JWT_SECRET \
        JWT_SECRET_FILE JWT_ISSUER JWT_AUDIENCE ACCESS_TOKEN_TTL REFRESH_TOKEN_TTL SESSION_LIFETIME \
        REFRESH_REUSE_GRACE JWT_LEEWAY SELF_REGISTRATION_ROLES PASSWORD_COMPOSITION_RULES \
        ARGON2_MEMORY_KIB ARGON2_ITERATIONS ARGON2_PARALLELISM HASH_CONCURRENCY HASH_QUEUE \
        FAILED_LOGIN_FREE FAILED_LOGIN_MAX_DELAY CORS_ALLOWED_ORIGINS CORS_ALLOW_CREDENTIALS \
        CORS_ALLOWED_METHODS CORS_ALLOWED_HEADERS CORS_MAX_AGE HSTS HSTS_MAX_AGE \
        HSTS_INCLUDE_SUBDOMAINS HSTS_PRELOAD CONTENT_SECURITY_POLICY FRAME_OPTIONS \
        CONTENT_TYPE_OPTIONS REFERRER_POLICY PERMISSIONS_POLICY CROSS_ORIGIN_OPENER_POLICY \
        CROSS_ORIGIN_RESOURCE_POLICY XSS_PROTECTION CACHE_CONTROL RATE_LIMIT_ENABLED \
        RATE_LIMIT_DEFAULT RATE_LIMIT_POLICIES RATE_LIMIT_ROUTES RATE_LIMIT_MAX_KEYS \
        RATE_LIMIT_SWEEP_INTERVAL";
    let envs: Vec<&str> = declared.iter().filter_map(|(s, _)| s.env).collect();
    let names = names.split(' ').map(|n| format!("PALISADE_{n}"));
    for name in names.chain(["DATABASE_URL".into(), "DATABASE_URL_FILE".into()]) {
        assert!(envs.contains(&name.as_str()), "{name} is no longer read");
    }
}

#[test]
fn environment_overrides_defaults_and_maps_merge_by_entry() {
    let s = Settings::load(&env(&[
        ("PALISADE_BODY_LIMIT", "42"),
        (
            "PALISADE_RATE_LIMIT_POLICIES",
            "data=1/second per ip; extra=2/hour per user",
        ),
        (
            "PALISADE_CORS_ALLOWED_ORIGINS",
            "https://a.example, https://b.example",
        ),
        ("PALISADE_SOMETHING_NEWER", "is ignored"),
    ]))
    .unwrap();
    assert_eq!(s.server.body_limit, 42);
    let policies = &s.rate_limit.policies;
    assert_eq!(policies["data"].to_string(), "1/second per ip");
    assert_eq!(policies["extra"].to_string(), "2/hour per user");
    assert_eq!(policies["default"].to_string(), "120/minute per ip");
    let origins = ["https://a.example", "https://b.example"].map(http::HeaderValue::from_static);
    assert_eq!(
        s.cors.allowed_origins,
        AllowedOrigins::List(origins.to_vec())
    );
    assert!(s.to_redacted_toml().contains("body_limit = 42\n"));
}

#[test]
fn every_malformed_variable_is_reported_at_once() {
    let errors = problems(&env(&[
        ("PALISADE_BODY_LIMIT", "big"),
        ("PALISADE_DOCS", "maybe"),
    ]));
    assert_eq!(
        errors,
        [
            "PALISADE_BODY_LIMIT: expected a whole number, got \"big\"",
            "PALISADE_DOCS: expected true or false, got \"maybe\"",
        ]
    );
}

#[test]
fn every_problem_is_listed_at_once() {
    let errors = problems(&env(&[
        ("PALISADE_BIND", "nowhere"),
        ("PALISADE_REQUEST_TIMEOUT", "soon"),
        ("PALISADE_ACCESS_TOKEN_TTL", "8d"),
        ("PALISADE_CORS_ALLOWED_ORIGINS", "*"),
        ("PALISADE_CORS_ALLOW_CREDENTIALS", "true"),
        ("PALISADE_RATE_LIMIT_POLICIES", "data=10/fortnight"),
        ("PALISADE_RATE_LIMIT_ROUTES", "GET /x=nope"),
    ]));
    let all = errors.join("\n");
    for needle in [
        "server.bind",
        "server.request_timeout",
        "auth.access_token_ttl: must be shorter",
        "allow_credentials",
        "rate_limit.policies.data",
        "no policy named \"nope\"",
    ] {
        assert!(all.contains(needle), "{needle} missing from:\n{all}");
    }
    assert_eq!(errors.len(), 6, "{all}");
}

#[test]
fn a_secret_file_is_read_without_its_newline_and_never_rendered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("url");
    std::fs::write(&path, "postgres://u:hunter2@db/palisade\r\n").unwrap();
    let file = path.to_str().unwrap();
    let errors = problems(&env(&[("DATABASE_URL_FILE", file)]));
    assert!(
        errors[0].contains("required with a shared database"),
        "{errors:?}"
    );
    let secret = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";
    let s = Settings::load(&env(&[
        ("DATABASE_URL_FILE", file),
        ("PALISADE_JWT_SECRET", secret),
        (
            "PALISADE_MFA_KEY",
            "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d",
        ),
    ]))
    .unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(
        s.database.url.as_ref().unwrap().expose_secret(),
        "postgres://u:hunter2@db/palisade"
    );
    let rendered = s.to_redacted_toml();
    assert!(
        rendered.contains("jwt_secret = \"<redacted>\"")
            && rendered.contains(&format!("url_file = {file:?}"))
    );
    assert!(!rendered.contains(secret) && !rendered.contains("hunter2"));
    assert!(
        !rendered.contains("0a1b2c3d4e5f6071") && rendered.contains("mfa_key = \"<redacted>\"")
    );
}

#[test]
fn the_mfa_key_is_required_with_a_shared_database_and_must_differ_from_the_signing_secret() {
    let url = "postgres://u@db/palisade";
    let secret = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";
    let errors = problems(&env(&[
        ("DATABASE_URL", url),
        ("PALISADE_JWT_SECRET", secret),
    ]));
    assert!(
        errors.iter().any(|e| e.starts_with("auth.mfa_key")),
        "{errors:?}"
    );
    let errors = problems(&env(&[
        ("PALISADE_JWT_SECRET", secret),
        ("PALISADE_MFA_KEY", secret),
    ]));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("must not be the signing secret")),
        "{errors:?}"
    );
}

#[test]
fn mail_settings_are_checked() {
    let errors = problems(&env(&[
        ("PALISADE_SMTP_URL", "http://mail.example.org"),
        ("PALISADE_MAIL_FROM", "not a mailbox"),
        ("PALISADE_PUBLIC_BASE_URL", "ftp://x"),
    ]));
    for key in ["mail.smtp_url", "mail.from", "mail.public_base_url"] {
        assert!(
            errors.iter().any(|e| e.starts_with(key)),
            "{key}: {errors:?}"
        );
    }
    let s = Settings::load(&env(&[
        ("PALISADE_SMTP_URL", "smtps://mail.example.org"),
        ("PALISADE_SMTP_USERNAME", "mailer"),
        ("PALISADE_SMTP_PASSWORD", "pw-hunter2"),
    ]))
    .unwrap();
    let smtp = s.mail.smtp.as_ref().unwrap();
    assert_eq!(
        (smtp.port, smtp.expose_password()),
        (465, Some("pw-hunter2"))
    );
    assert!(!s.to_redacted_toml().contains("pw-hunter2"));
    assert!(!format!("{s:?}").contains("pw-hunter2"));
}
