//! The database a test binary runs on. The suite is compiled twice from the
//! same sources: the `api` test binary runs every test on SQLite (a fresh
//! file per test), `api_postgres` on PostgreSQL (a fresh database per
//! test, created here and dropped when the test's server is dropped).

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;

/// Whether this test binary is the PostgreSQL run of the suite.
pub const POSTGRES: bool = matches!(env!("CARGO_CRATE_NAME").as_bytes(), b"api_postgres");

/// The server the PostgreSQL run uses: the local one every machine and CI
/// run (`.ci/run` starts it when it is down), or `PALISADE_TEST_POSTGRES`.
fn server_url() -> String {
    std::env::var("PALISADE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// Runs `work` on a runtime of its own, on a thread of its own, so it can
/// be called from sync tests, async tests and `Drop` alike.
fn blocking<T, F>(work: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(work())
    })
    .join()
    .unwrap()
}

/// A PostgreSQL database that lives as long as this value.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    pub fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "palisade_test_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        );
        let create = format!("CREATE DATABASE \"{name}\"");
        blocking(move || async move {
            let url = format!("{}/postgres", server_url());
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap_or_else(|e| {
                panic!(
                    "the PostgreSQL run of the suite (test binary api_postgres) cannot reach \
                     {url}: {e}. Start the local server with \
                     `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
                     (what .ci/run does), or point PALISADE_TEST_POSTGRES at another one"
                )
            });
            sqlx::raw_sql(&create).execute(&mut conn).await.unwrap();
        });
        Self { name }
    }

    /// The `DATABASE_URL` of this database.
    pub fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }

    /// The `DATABASE_URL` of this database reached through `addr` (a
    /// [`crate::proxy::Proxy`] in front of the server).
    pub fn url_through(&self, addr: std::net::SocketAddr) -> String {
        let base = server_url();
        let user = base
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .map_or("postgres", |(user, _)| user);
        format!("postgres://{user}@{addr}/{}", self.name)
    }
}

/// The address of the PostgreSQL server the suite uses.
pub fn server_addr() -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let base = server_url();
    let host = base.rsplit_once('@').map_or(base.as_str(), |(_, h)| h);
    host.to_socket_addrs().unwrap().next().unwrap()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let drop = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        blocking(move || async move {
            let url = format!("{}/postgres", server_url());
            if let Ok(mut conn) = sqlx::PgConnection::connect(&url).await {
                let _ = sqlx::raw_sql(&drop).execute(&mut conn).await;
            }
        });
    }
}

/// A signing secret for the PostgreSQL run, which (as any shared database)
/// requires a configured one.
pub const TEST_SECRET: &str = "test-only-signing-secret-0123456789abcdefghijklmnop";

/// The MFA key every instance of a test on a shared database uses.
pub const TEST_MFA_KEY: &str = "test-only-mfa-key-9876543210zyxwvutsrqponmlkjihgf";
