//! `[database]`: which database, the size of its connection pool, and the
//! timeouts that make a lost or stuck database a quick 503, never a hang.

use std::time::Duration;

use secrecy::SecretString;

use super::reader::Reader;
use super::setting::Setting;

/// `[database]`.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `None` means the embedded SQLite file in the data folder.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
}

impl DatabaseSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let url = r.secret(
            Setting::unset("database.url", "DATABASE_URL")
                .note("SQLite file `palisade.db` in the data folder")
                .help("Database URL: `sqlite:`, `postgres:` or `postgresql:` (TLS with `?sslmode=verify-full&sslrootcert=FILE`; see [operations.md](operations.md)). A non-SQLite URL (a database several instances share) makes a configured signing secret mandatory."),
            Setting::unset("database.url_file", "DATABASE_URL_FILE")
                .help("Read `DATABASE_URL` from this file."),
        );
        let url = url.filter(|u| !u.trim().is_empty());
        if let Some(u) = &url {
            let scheme = u.split(':').next().unwrap_or_default();
            if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
                let why = format!("unsupported scheme {scheme:?}; use sqlite: or postgres:");
                r.problem("database.url", why);
            }
        }
        Some(Self {
            url: url.map(SecretString::from),
            max_connections: r.int(
                Setting::new(
                    "database.max_connections",
                    "PALISADE_DATABASE_MAX_CONNECTIONS",
                    "8",
                )
                .range(1, 1000)
                .help("Size of the connection pool."),
            )?,
            acquire_timeout: r.duration(
                Setting::new("database.acquire_timeout", "PALISADE_DATABASE_ACQUIRE_TIMEOUT", "5s")
                    .help("Longest a request waits for a pooled connection (or for a new one to be opened); past it the answer is 503."),
            )?,
            statement_timeout: r.duration(
                Setting::new("database.statement_timeout", "PALISADE_DATABASE_STATEMENT_TIMEOUT", "10s")
                    .help("PostgreSQL: longest one statement may run (the server's `statement_timeout`); past it the answer is 503. SQLite ignores it."),
            )?,
        })
    }

    /// Whether several instances may share this database (anything but SQLite).
    pub(super) fn is_shared(&self) -> bool {
        use secrecy::ExposeSecret;
        self.url
            .as_ref()
            .is_some_and(|u| !u.expose_secret().starts_with("sqlite:"))
    }
}
