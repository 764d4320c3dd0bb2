//! `[auth]`: the signing secret and the token lifetimes, registration,
//! password hashing and the failed-login back-off.

use std::time::Duration;

use super::reader::{Reader, any_duration};
use super::secret::SigningSecret;
use super::setting::Setting;
use crate::domain::Role;

/// `[auth]`.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// `None` means "generate one into the data folder on first start".
    pub jwt_secret: Option<SigningSecret>,
    /// How access tokens are signed.
    pub jwt_algorithm: JwtAlgorithm,
    /// A PEM private key to sign with (EdDSA, ES256), instead of a
    /// generated one.
    pub jwt_private_key_file: Option<std::path::PathBuf>,
    /// How long a new signing key is published before it signs.
    pub signing_key_publish_delay: Duration,
    /// How often an instance re-reads the key set.
    pub key_set_refresh: Duration,
    /// The `iss` of access tokens (and the discovery document's `issuer`).
    /// Empty until [`super::Settings`] resolves its default.
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
    /// How long a session check may be answered from memory; zero: off.
    pub session_cache_ttl: Duration,
    /// How many users' session checks are kept in memory.
    pub session_cache_size: usize,
    /// The key TOTP secrets are sealed under and recovery codes digested
    /// with; `None` means "generate one into the data folder".
    pub mfa_key: Option<SigningSecret>,
    /// Roles that must have a second factor.
    pub mfa_required_roles: Vec<Role>,
    /// Refuse the login of an account whose address is unverified.
    pub require_verified_email: bool,
}

/// How access tokens are signed (`auth.jwt_algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwtAlgorithm {
    /// HMAC-SHA-256 with `auth.jwt_secret`.
    Hs256,
    /// Ed25519 (RFC 8037).
    EdDsa,
    /// ECDSA with P-256 and SHA-256.
    Es256,
}

impl JwtAlgorithm {
    /// The JOSE name (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    /// Whether tokens carry a `kid` of the shared key set.
    pub fn is_asymmetric(self) -> bool {
        self != Self::Hs256
    }
}

impl std::str::FromStr for JwtAlgorithm {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HS256" => Ok(Self::Hs256),
            "EdDSA" => Ok(Self::EdDsa),
            "ES256" => Ok(Self::Es256),
            _ => Err("must be HS256, EdDSA or ES256"),
        }
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl AuthSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let jwt_secret = r.secret(
            Setting::unset("auth.jwt_secret", "PALISADE_JWT_SECRET")
                .note("generated once into the data folder")
                .help("HS256 signing secret: at least 32 bytes, at least 8 distinct characters, no placeholder words."),
            Setting::unset("auth.jwt_secret_file", "PALISADE_JWT_SECRET_FILE")
                .help("Read the signing secret from this file."),
        );
        let jwt_secret = jwt_secret.and_then(|text| {
            r.check(
                "auth.jwt_secret (PALISADE_JWT_SECRET)",
                SigningSecret::parse(&text),
            )
        });
        let not_empty = |text: &str| match text.trim() {
            "" => Err("must not be empty"),
            text => Ok(text.to_owned()),
        };
        let issuer = r
            .parse(
                Setting::unset("auth.issuer", "PALISADE_JWT_ISSUER")
                    .note("`server.public_url`, else `palisade`")
                    .help("The `iss` of access tokens, checked on every request, and the `issuer` of the discovery document (RFC 8414 wants an https URL: set `server.public_url` or this)."),
                |text| Ok::<_, String>(text.trim().to_owned()),
            )
            .unwrap_or_default();
        let jwt_algorithm = r.parse(
            Setting::new("auth.jwt_algorithm", "PALISADE_JWT_ALGORITHM", "HS256")
                .help("How access tokens are signed: `HS256` (with `auth.jwt_secret`), `EdDSA` (Ed25519) or `ES256` (P-256). With the last two every token carries the `kid` of a key of the shared key set, published at `/.well-known/jwks.json`; see [auth.md](auth.md#signing-keys)."),
            str::parse::<JwtAlgorithm>,
        )?;
        let jwt_private_key_file = r
            .parse(
                Setting::unset("auth.jwt_private_key_file", "PALISADE_JWT_PRIVATE_KEY_FILE")
                    .note("(unset: generated once)")
                    .help("EdDSA or ES256: a PEM private key (PKCS#8; SEC1 for ES256) to sign with instead of a generated one. Read at start-up; a key not yet in the key set joins it like a rotation."),
                |text| Ok::<_, String>(std::path::PathBuf::from(text)),
            )
            .filter(|p| !p.as_os_str().is_empty());
        if jwt_private_key_file.is_some() && !jwt_algorithm.is_asymmetric() {
            r.problem(
                "auth.jwt_private_key_file",
                "needs auth.jwt_algorithm EdDSA or ES256",
            );
        }
        let signing_key_publish_delay = r.parse(
            Setting::new("auth.signing_key_publish_delay", "PALISADE_SIGNING_KEY_PUBLISH_DELAY", "10m")
                .help("How long a new signing key (`palisade keys rotate`) is published in the JWKS before it signs, so every instance and every verifier's cached JWKS knows it first (at least `auth.key_set_refresh` and the JWKS's 5-minute cache)."),
            any_duration,
        )?;
        let key_set_refresh = r.duration(
            Setting::new("auth.key_set_refresh", "PALISADE_KEY_SET_REFRESH", "30s")
                .help("How often an instance re-reads the signing key set from the database (it also re-reads, at most once a second, when a token names a key it does not know)."),
        )?;
        let audience = r.parse(
            Setting::new("auth.audience", "PALISADE_JWT_AUDIENCE", "palisade")
                .help("The `aud` of access tokens, checked on every request."),
            not_empty,
        )?;
        let before = r.problem_count();
        let access_token_ttl = r.duration(
            Setting::new("auth.access_token_ttl", "PALISADE_ACCESS_TOKEN_TTL", "15m")
                .help("Lifetime of an access token (`expires_in`). Must be shorter than the refresh-token lifetime."),
        )?;
        let refresh_token_ttl = r.duration(
            Setting::new("auth.refresh_token_ttl", "PALISADE_REFRESH_TOKEN_TTL", "7d")
                .help("Lifetime of a refresh token; each use rotates it. Must not be longer than the session lifetime."),
        )?;
        let session_lifetime = r.duration(
            Setting::new("auth.session_lifetime", "PALISADE_SESSION_LIFETIME", "30d")
                .help("Absolute lifetime of a login session, however often it is refreshed."),
        )?;
        // Compare the lifetimes only when all three were given correctly.
        if r.problem_count() == before {
            if access_token_ttl >= refresh_token_ttl {
                r.problem(
                    "auth.access_token_ttl",
                    "must be shorter than auth.refresh_token_ttl",
                );
            }
            if refresh_token_ttl > session_lifetime {
                r.problem(
                    "auth.refresh_token_ttl",
                    "must not be longer than auth.session_lifetime",
                );
            }
        }
        let mfa_key = r.secret(
            Setting::unset("auth.mfa_key", "PALISADE_MFA_KEY")
                .note("generated once into the data folder")
                .help("The key TOTP secrets are encrypted under (XChaCha20-Poly1305, through HKDF-SHA-256) and recovery codes are digested with; never the signing secret. Same strength rules as `auth.jwt_secret`. Changing it voids every second factor."),
            Setting::unset("auth.mfa_key_file", "PALISADE_MFA_KEY_FILE")
                .help("Read the MFA key from this file."),
        );
        let mfa_key = mfa_key.and_then(|text| {
            r.check(
                "auth.mfa_key (PALISADE_MFA_KEY)",
                SigningSecret::parse(&text),
            )
        });
        if let (Some(mfa), Some(jwt)) = (&mfa_key, &jwt_secret)
            && mfa.expose() == jwt.expose()
        {
            r.problem(
                "auth.mfa_key",
                "must not be the signing secret: a leak of one must not give away the other",
            );
        }
        Some(Self {
            mfa_key,
            mfa_required_roles: r.list(
                Setting::new("auth.mfa_required_roles", "PALISADE_MFA_REQUIRED_ROLES", "")
                    .help("Roles that must have a second factor: a user of such a role without one gets tokens that only `/profile`, `/auth/logout` and the MFA enrolment routes accept (403 `mfa_enrolment_required` elsewhere)."),
                str::parse::<Role>,
            ),
            require_verified_email: r.flag(
                Setting::new("auth.require_verified_email", "PALISADE_REQUIRE_VERIFIED_EMAIL", "false")
                    .help("Refuse the login of an account whose address is not verified (after the right password only: 400 `invalid_grant`, and a new verification mail at most once an hour)."),
            )?,
            jwt_secret,
            jwt_algorithm,
            jwt_private_key_file,
            signing_key_publish_delay,
            key_set_refresh,
            issuer,
            audience,
            access_token_ttl,
            refresh_token_ttl,
            session_lifetime,
            refresh_reuse_grace: r.parse(
                Setting::new("auth.refresh_reuse_grace", "PALISADE_REFRESH_REUSE_GRACE", "0s")
                    .help("How long after its rotation a refresh token may be presented again without ending its session (for clients that race two refreshes). The replay is refused either way. `0s`: any replay ends the session."),
                any_duration,
            )?,
            leeway: r.parse(
                Setting::new("auth.leeway", "PALISADE_JWT_LEEWAY", "30s")
                    .help("Clock-skew allowance for `exp` and `nbf` (whole seconds; may be `0s`)."),
                any_duration,
            )?,
            self_registration_roles: self_registration_roles(r),
            password_composition_rules: r.flag(
                Setting::new("auth.password_composition_rules", "PALISADE_PASSWORD_COMPOSITION_RULES", "false")
                    .help("Also require an upper-case letter, a lower-case letter, a digit and one of `!@#$%^&*`. Discouraged by NIST SP 800-63B; `check-config` warns when on."),
            )?,
            argon2: Argon2Settings::read(r)?,
            hash_concurrency: r
                .int(
                    Setting::new("auth.hash_concurrency", "PALISADE_HASH_CONCURRENCY", "0")
                        .range(0, 1024)
                        .note("one per CPU core")
                        .help("Password hashes computed at once."),
                )
                .map(|n| match n {
                    0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
                    n => n,
                })?,
            hash_queue: r.int(
                Setting::new("auth.hash_queue", "PALISADE_HASH_QUEUE", "64")
                    .range(0, 100_000)
                    .help("Hashes allowed to wait for a worker; past it the answer is 503 at once."),
            )?,
            failed_login_free: r.int(
                Setting::new("auth.failed_login_free", "PALISADE_FAILED_LOGIN_FREE", "5")
                    .range(1, 100)
                    .help("Login attempts per account that may follow one another without a wait; from then on each failure doubles the wait. Attempts in flight count."),
            )?,
            failed_login_max_delay: r.duration(
                Setting::new("auth.failed_login_max_delay", "PALISADE_FAILED_LOGIN_MAX_DELAY", "15m")
                    .help("Longest back-off after repeated failed logins (never a permanent lockout)."),
            )?,
            session_cache_ttl: r.parse(
                Setting::new("auth.session_cache_ttl", "PALISADE_SESSION_CACHE_TTL", "10s")
                    .help("How long an instance may accept an access token's session from memory instead of the database (`0s`: off). Every session end or user change evicts it everywhere first (see [auth.md](auth.md#the-session-cache)); this bounds only the cases where an invalidation could not be delivered. Needs a channel to every writer: the embedded database, or Redis; PostgreSQL without Redis never caches."),
                any_duration,
            )?,
            session_cache_size: r.int(
                Setting::new("auth.session_cache_size", "PALISADE_SESSION_CACHE_SIZE", "10000")
                    .range(0, 10_000_000)
                    .help("Users whose session checks an instance keeps in memory (up to 8 sessions each; `0`: off)."),
            )?,
        })
    }
}

fn self_registration_roles(r: &mut Reader) -> Vec<Role> {
    let roles = r.list(
        Setting::new("auth.self_registration_roles", "PALISADE_SELF_REGISTRATION_ROLES", "user,editor")
            .help("Roles a client may ask for at registration; only `user` and `editor` are allowed here, at least one."),
        |name| match name.parse::<Role>()? {
            role if role <= Role::Editor => Ok(role),
            role => Err(format!("{role} can never be self-assigned")),
        },
    );
    if roles.is_empty() {
        r.problem(
            "auth.self_registration_roles",
            "name at least one of user, editor",
        );
    }
    roles
}

impl Argon2Settings {
    fn read(r: &mut Reader) -> Option<Self> {
        let settings = Self {
            memory_kib: r.int(
                Setting::new(
                    "auth.argon2_memory_kib",
                    "PALISADE_ARGON2_MEMORY_KIB",
                    "19456",
                )
                .range(8, 4 * 1024 * 1024)
                .help("Argon2id memory cost in KiB (OWASP: 19456)."),
            )?,
            iterations: r.int(
                Setting::new("auth.argon2_iterations", "PALISADE_ARGON2_ITERATIONS", "2")
                    .range(1, 100)
                    .help("Argon2id time cost (OWASP: 2)."),
            )?,
            parallelism: r.int(
                Setting::new(
                    "auth.argon2_parallelism",
                    "PALISADE_ARGON2_PARALLELISM",
                    "1",
                )
                .range(1, 64)
                .help("Argon2id lanes (OWASP: 1)."),
            )?,
        };
        if settings.memory_kib < 8 * settings.parallelism {
            let why = "Argon2 needs at least 8 KiB per lane (auth.argon2_parallelism)";
            r.problem("auth.argon2_memory_kib", why);
        }
        Some(settings)
    }
}
