//! The command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::settings::Sources;

/// Palisade: a secure-by-default API server.
///
/// Settings come from built-in defaults, then a TOML file, then `.env`,
/// then the environment, then these flags. `palisade check-config` shows
/// the result.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, long_about)]
pub struct Cli {
    /// A TOML settings file (else the file named by PALISADE_CONFIG, if any).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The data folder: embedded database and generated signing secret
    /// (overrides server.data_dir / PALISADE_DATA_DIR).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (default 127.0.0.1:8000) until SIGINT or SIGTERM, then
    /// drain in-flight requests within server.shutdown_timeout.
    Serve {
        /// Listen address (overrides server.bind / PALISADE_BIND).
        #[arg(long, value_name = "HOST:PORT")]
        bind: Option<String>,
    },
    /// Load and validate the settings, print the effective configuration
    /// with secrets redacted and any warnings; exit non-zero on any error.
    CheckConfig,
    /// Apply the database migrations and exit (`serve` also applies them).
    Migrate,
    /// Delete what the retention settings no longer keep (ended sessions,
    /// expired tokens, old security events), in batches; print the counts.
    Prune {
        /// Count what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Copy the embedded SQLite database to FILE, consistently, while the
    /// server may be running (SQLite's VACUUM INTO). FILE must not exist.
    Backup {
        /// Where the copy goes.
        file: std::path::PathBuf,
    },
    /// Import accounts from another application: JSON lines, or CSV (by
    /// the .csv extension) with the columns email, username, name, role,
    /// password_hash, disabled, created_at. Hashes are kept (bcrypt,
    /// Argon2, passlib pbkdf2_sha256) and upgraded to Argon2id at login.
    ImportUsers {
        /// The file to read.
        file: std::path::PathBuf,
        /// Import nothing unless every row is accepted.
        #[arg(long)]
        atomic: bool,
    },
    /// The signing key set of EdDSA / ES256 access tokens (shared by every
    /// instance through the database).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage users directly, for operators locked out of the API.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Create a super_admin account: the only way to make one.
    CreateAdmin {
        /// The account's email address.
        #[arg(long)]
        email: String,
        /// The account's username (3-50 of A-Z a-z 0-9 _).
        #[arg(long)]
        username: String,
        /// The display name (default: the username).
        #[arg(long)]
        name: Option<String>,
        /// Read the password from one line of standard input instead of
        /// prompting twice.
        #[arg(long)]
        password_stdin: bool,
    },
}

impl Cli {
    /// The settings sources of this invocation.
    pub fn sources(&self) -> Sources {
        let mut sources = Sources::from_process();
        sources.config_file.clone_from(&self.config);
        sources.data_dir.clone_from(&self.data_dir);
        if let Command::Serve { bind } = &self.command {
            sources.bind.clone_from(bind);
        }
        sources
    }
}

/// `palisade keys ...`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key: published in the JWKS at once, signing after
    /// auth.signing_key_publish_delay; the key it replaces keeps verifying
    /// until every token it signed has expired.
    Rotate {
        /// Sign with the new key at once (instances that have not re-read
        /// the key set yet sign with the old one until they do, within
        /// auth.key_set_refresh). For a key you must stop using now.
        #[arg(long)]
        now: bool,
        /// Rotate the gateway's identity key set (Ed25519, signs
        /// `X-Palisade-Identity`) instead of the access-token keys.
        #[arg(long)]
        identity: bool,
    },
    /// List the keys as JSON lines: kid, purpose (access or identity),
    /// algorithm, state (pending, current, retired, expired), when it
    /// signs from and verifies until.
    List,
}

/// `palisade users ...`: the administration API's counterparts, for
/// operators locked out of it. They obey the same rules, except that the
/// operator may act on anyone; every change is audited with actor `cli`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List users as JSON lines, oldest first.
    List {
        /// Case-insensitive literal substring of email, username or name.
        #[arg(long)]
        search: Option<String>,
        /// Page number, from 1.
        #[arg(long, default_value_t = 1)]
        page: i64,
        /// Users per page, 1 to 100.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Set a user's role (user, editor or admin; never super_admin).
    SetRole {
        /// The user's id, username or email.
        user: String,
        /// The new role.
        role: String,
    },
    /// Disable a user (ends its sessions), or enable it again.
    Disable {
        /// The user's id, username or email.
        user: String,
        /// Enable the user instead.
        #[arg(long)]
        enable: bool,
    },
    /// Remove a user's second factor and recovery codes (a lost phone and
    /// lost codes), end the user's sessions, and mail a notice. The user
    /// logs in with the password alone and may enrol again.
    RemoveMfa {
        /// The user's id, username or email.
        user: String,
    },
}
