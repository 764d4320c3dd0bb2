//! `palisade import-users FILE`: accounts from another application (a
//! FastAPI/passlib one, say) with their password hashes kept as they are.
//!
//! The file is JSON lines or CSV with a header (by its extension, `.csv`
//! or anything else for JSON lines), with the fields `email`, `username`,
//! `name`, `role`, `password_hash`, `disabled`, `created_at`; only
//! `email`, `username` and `password_hash` are required. Every row is
//! checked as registration checks it, except the password, which the
//! import cannot see: its hash must be one Palisade verifies at login
//! (bcrypt, Argon2id/Argon2i, passlib's pbkdf2_sha256), and is upgraded to
//! Argon2id there. `super_admin` is never imported. Rows whose email or
//! username is already taken (in the database or earlier in the file) are
//! reported as duplicates and left out. With `--atomic`, any refused or
//! duplicate row imports nothing.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};

use crate::auth::audit::{self, Event, RequestContext};
use crate::auth::hashing;
use crate::domain::{Email, Name, Role, Username};
use crate::settings::Settings;
use crate::startup::build_state;
use crate::storage::{self, users};

/// The fields a row may have.
const FIELDS: &[&str] = &[
    "email",
    "username",
    "name",
    "role",
    "password_hash",
    "disabled",
    "created_at",
];

/// One row that passed every check.
#[derive(Debug)]
struct Accepted {
    line: usize,
    email: Email,
    username: Username,
    name: Name,
    role: Role,
    password_hash: String,
    disabled: bool,
    created_at: i64,
}

/// A row's fields, or why it could not be read.
type RawRow = Result<BTreeMap<String, String>, String>;

/// The rows of `text`, each with its line number, as field maps.
fn rows(text: &str, csv_file: bool) -> Result<Vec<(usize, RawRow)>, String> {
    let mut out = Vec::new();
    if csv_file {
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| format!("the CSV header: {e}"))?
            .clone();
        for record in reader.records() {
            match record {
                Ok(record) => {
                    let line = record.position().map_or(0, |p| p.line() as usize);
                    let map = headers
                        .iter()
                        .zip(record.iter())
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect();
                    out.push((line, Ok(map)));
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line() as usize);
                    out.push((line, Err(format!("unreadable CSV row: {e}"))));
                }
            }
        }
    } else {
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let row = match serde_json::from_str::<serde_json::Map<String, Value>>(line) {
                Ok(map) => Ok(map
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            Value::String(s) => s,
                            Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        (k, v)
                    })
                    .collect()),
                Err(e) => Err(format!("not a JSON object: {e}")),
            };
            out.push((n + 1, row));
        }
    }
    Ok(out)
}

/// Checks one row.
fn check(line: usize, row: &BTreeMap<String, String>, now: i64) -> Result<Accepted, String> {
    if let Some(unknown) = row.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown:?}"));
    }
    let field = |name: &str| row.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    let email =
        Email::parse(field("email").unwrap_or_default()).map_err(|e| format!("email {e}"))?;
    let username = Username::parse(field("username").unwrap_or_default())
        .map_err(|e| format!("username {e}"))?;
    let name =
        Name::parse(field("name").unwrap_or(username.as_str())).map_err(|e| format!("name {e}"))?;
    let role = match field("role") {
        None => Role::User,
        Some(text) => text.parse::<Role>().map_err(|e| format!("role {e}"))?,
    };
    if role == Role::SuperAdmin {
        return Err("role super_admin is never imported (use create-admin)".into());
    }
    let password_hash = field("password_hash")
        .ok_or("password_hash is missing")?
        .to_owned();
    hashing::importable(&password_hash).map_err(|e| format!("password_hash {e}"))?;
    let disabled = match field("disabled").map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no") => false,
        Some("true" | "1" | "yes") => true,
        Some(other) => return Err(format!("disabled {other:?} is not true or false")),
    };
    let created_at = match field("created_at") {
        None => now,
        Some(text) => {
            let at =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| format!("created_at {text:?} is not an RFC 3339 time"))?;
            let ms = at.unix_timestamp_nanos() / 1_000_000;
            i64::try_from(ms)
                .ok()
                .filter(|ms| *ms <= now)
                .ok_or("created_at is in the future")?
        }
    };
    Ok(Accepted {
        line,
        email,
        username,
        name,
        role,
        password_hash,
        disabled,
        created_at,
    })
}

/// `palisade import-users FILE [--atomic]`. Exit 0: every row imported;
/// 1: some rows refused or duplicate, the others imported; 2: nothing
/// imported (an unreadable file, or `--atomic` with a bad row).
pub async fn run(settings: Settings, file: &Path, atomic: bool) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return super::fail(&format!("cannot read {}: {e}", file.display())),
    };
    let csv_file = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let rows = match rows(&text, csv_file) {
        Ok(rows) => rows,
        Err(e) => return super::fail(&e),
    };
    let state = match build_state(settings).await {
        Ok(state) => state,
        Err(e) => return super::fail(&format!("{e:#}")),
    };
    let pool = state.db.pool();
    let now = storage::now_ms();
    let mut refused = Vec::new();
    let mut duplicates = Vec::new();
    let mut accepted = Vec::new();
    let (mut emails, mut usernames) = (HashSet::new(), HashSet::new());
    for (line, row) in rows {
        let checked = row.and_then(|row| check(line, &row, now));
        let row = match checked {
            Ok(row) => row,
            Err(reason) => {
                refused.push(json!({"line": line, "reason": reason}));
                continue;
            }
        };
        let (email_key, username_key) = (row.email.key(), row.username.key());
        let taken = match users::taken(pool, &email_key, &username_key).await {
            Ok(taken) => taken,
            Err(e) => return super::fail(&format!("the database: {e}")),
        };
        let in_file = if !emails.insert(email_key) {
            Some("email")
        } else if !usernames.insert(username_key) {
            Some("username")
        } else {
            None
        };
        if let Some(field) = taken.or(in_file) {
            duplicates.push(json!({"line": line, "field": field}));
            continue;
        }
        accepted.push(row);
    }
    let clean = refused.is_empty() && duplicates.is_empty();
    let imported = if atomic && !clean {
        0
    } else {
        match insert(&state, &accepted, atomic, &mut duplicates).await {
            Ok(n) => n,
            Err(e) => return super::fail(&format!("nothing imported: {e}")),
        }
    };
    let report = json!({
        "imported": imported,
        "refused": refused,
        "duplicates": duplicates,
        "atomic": atomic,
    });
    println!("{report}");
    if clean && duplicates.is_empty() {
        ExitCode::SUCCESS
    } else if atomic {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// Inserts the accepted rows, in one transaction with `atomic`, else one
/// by one (a row that became a duplicate meanwhile is reported). Returns
/// how many went in.
async fn insert(
    state: &crate::state::AppState,
    rows: &[Accepted],
    atomic: bool,
    duplicates: &mut Vec<Value>,
) -> Result<usize, sqlx::Error> {
    let ctx = RequestContext::default();
    let pool = state.db.pool();
    let mut tx = if atomic {
        Some(pool.begin().await?)
    } else {
        None
    };
    let mut count = 0;
    for row in rows {
        let new = users::Imported {
            email: row.email.as_str(),
            email_key: &row.email.key(),
            username: row.username.as_str(),
            username_key: &row.username.key(),
            name: row.name.as_str(),
            role: row.role,
            password_hash: &row.password_hash,
            disabled: row.disabled,
            created_at: row.created_at,
        };
        let id = storage::new_id();
        let done = match tx.as_mut() {
            Some(tx) => users::import(&mut **tx, &id, &new).await,
            None => users::import(pool, &id, &new).await,
        };
        match done {
            Ok(()) => {}
            Err(e) if users::taken_by(&e).is_some() && !atomic => {
                duplicates.push(json!({"line": row.line, "field": users::taken_by(&e)}));
                continue;
            }
            Err(e) => return Err(e),
        }
        let event = audit::event(
            Event::Import,
            &ctx,
            Some("cli"),
            Some(&id),
            Some("imported"),
        );
        match tx.as_mut() {
            Some(tx) => storage::events::insert(&mut **tx, &event, storage::now_ms()).await?,
            None => storage::events::insert(pool, &event, storage::now_ms()).await?,
        }
        count += 1;
    }
    if let Some(tx) = tx {
        tx.commit().await?;
    }
    Ok(count)
}
