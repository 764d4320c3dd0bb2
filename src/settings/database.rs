//! `[database]`: which database, and the size of its connection pool.

use secrecy::SecretString;

use super::reader::Reader;
use super::setting::Setting;

/// `[database]`.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `None` means the embedded SQLite file in the data folder.
    pub url: Option<SecretString>,
    pub max_connections: u32,
}

impl DatabaseSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let url = r.secret(
            Setting::unset("database.url", "DATABASE_URL")
                .note("SQLite file `palisade.db` in the data folder")
                .help("Database URL: `sqlite:`, `postgres:` or `postgresql:` (PostgreSQL connections are not encrypted; see [docs/operations.md](operations.md)). A non-SQLite URL (a database several instances share) makes a configured signing secret mandatory."),
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
