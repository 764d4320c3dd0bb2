//! All SQL lives here, in small per-table modules, with bound parameters
//! only (a test scans the sources for SQL built from strings).
//!
//! One code path serves SQLite and PostgreSQL through sqlx's `Any` driver:
//! the SQL is portable (`$n` placeholders, `RETURNING`, no dialect
//! functions), ids are UUID text, times are Unix milliseconds in 64-bit
//! integers and flags are integers, so the same statements and the same
//! tests run on both. Each database has its own migration folder with the
//! same shape. See `docs/storage.md` for why.

pub mod api_keys;
pub mod devices;
pub mod email_tokens;
pub mod events;
pub mod mfa;
pub mod prune;
pub mod refresh_tokens;
pub mod sessions;
pub mod signing_keys;
pub mod users;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::error::ApiError;
use crate::settings::DatabaseSettings;
use crate::settings::secret::{create_private_dir, create_private_file};

/// The database, embedded SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    postgres: bool,
    /// Shared, so that a clone (one per request that takes the state)
    /// does not copy the path.
    sqlite_file: Option<Arc<Path>>,
}

/// Name of the embedded database file in the data folder.
pub const SQLITE_FILE: &str = "palisade.db";

impl Db {
    /// Connects (creating the SQLite file if needed). Does not migrate.
    pub async fn connect(settings: &DatabaseSettings, data_dir: &Path) -> anyhow::Result<Self> {
        install_default_drivers();
        let url = match &settings.url {
            Some(url) => url.expose_secret().to_owned(),
            None => {
                create_private_dir(data_dir).with_context(|| {
                    format!("cannot create the data folder {}", data_dir.display())
                })?;
                format!("sqlite://{}?mode=rwc", data_dir.join(SQLITE_FILE).display())
            }
        };
        let postgres = url.starts_with("postgres");
        let sqlite_file = sqlite_path(&url);
        if let Some(file) = &sqlite_file
            && url.contains("mode=rwc")
            && file
                .parent()
                .is_some_and(|p| p.as_os_str().is_empty() || p.exists())
        {
            // SQLite creates a new file (and then its -wal and -shm files,
            // which take the main file's mode) under the umask: 0644. Create
            // it first, owner-only.
            create_private_file(file)
                .with_context(|| format!("cannot create the database file {}", file.display()))?;
        }
        let statement_timeout = format!("{}ms", settings.statement_timeout.as_millis());
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _| {
                let statement_timeout = statement_timeout.clone();
                Box::pin(async move {
                    if conn.backend_name().eq_ignore_ascii_case("postgresql") {
                        // A stuck statement ends as an error (SQLSTATE
                        // 57014, a 503) instead of holding the request.
                        sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                            .bind(statement_timeout)
                            .execute(&mut *conn)
                            .await?;
                    }
                    if conn.backend_name().eq_ignore_ascii_case("sqlite") {
                        // WAL lets readers run beside the writer; the busy
                        // timeout makes writers queue instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .context("cannot connect to the database")?;
        Ok(Self {
            pool,
            postgres,
            sqlite_file: sqlite_file.map(Arc::from),
        })
    }

    /// The file of an SQLite database (`None` for PostgreSQL or an
    /// in-memory SQLite).
    pub fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref()
    }

    /// Applies the migrations of this database's kind.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let result = if self.postgres {
            sqlx::migrate!("migrations/postgres").run(&self.pool).await
        } else {
            sqlx::migrate!("migrations/sqlite").run(&self.pool).await
        };
        result.context("database migration failed")?;
        let rekeyed = users::rekey_emails(&self.pool)
            .await
            .context("recomputing the email keys failed")?;
        if rekeyed.changed + rekeyed.collisions + rekeyed.unparsable > 0 {
            tracing::info!(
                changed = rekeyed.changed,
                collisions = rekeyed.collisions,
                unparsable = rekeyed.unparsable,
                "email keys recomputed (NFKC and case folding)"
            );
        }
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }
}

/// The file an `sqlite:` URL names, if any.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    (!memory).then(|| PathBuf::from(path))
}

/// Now, in Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in milliseconds, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A new time-ordered id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The unique column a unique-key violation is about, if `err` is one:
/// PostgreSQL names the constraint (`users_email_key_key`), SQLite names
/// the column in its message (`UNIQUE constraint failed: users.email_key`).
/// Either way the column's name is in the text, so one rule serves both.
pub fn violated_unique<'c>(err: &sqlx::Error, columns: &[&'c str]) -> Option<&'c str> {
    let db = err
        .as_database_error()
        .filter(|e| e.is_unique_violation())?;
    let text = db.constraint().unwrap_or_else(|| db.message());
    columns.iter().copied().find(|c| text.contains(c))
}

/// Whether an error means the database cannot be reached or cannot serve
/// now (as opposed to a bug): no pool connection in time, a broken or
/// refused connection, a server shutting down or out of connections, a
/// statement timeout.
fn is_unavailable(err: &sqlx::Error) -> bool {
    use sqlx::Error;
    match err {
        Error::PoolTimedOut
        | Error::PoolClosed
        | Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::WorkerCrashed => true,
        Error::Database(db) => db.code().is_some_and(|code| {
            // SQLSTATE class 08 (connection exception), 53 (insufficient
            // resources), 57P01-57P03 (shutting down, cannot connect now),
            // 57014 (statement timeout).
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "57014")
        }),
        _ => false,
    }
}

impl From<sqlx::Error> for ApiError {
    /// A database that cannot be reached or cannot serve now is a 503
    /// (the change, if any, was not acknowledged); anything else is an
    /// internal error, logged with its cause. Neither tells the client
    /// more than that.
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            tracing::error!(error = %err, "database unavailable");
            Self::Unavailable("The database is unavailable; try again shortly".into())
        } else {
            Self::Internal(err.into())
        }
    }
}
