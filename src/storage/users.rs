//! The `users` table. Rows become [`User`]s here; the password hash
//! leaves only as an opaque [`StoredHash`], for the password check.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Row};

use crate::domain::{Email, Role, User};

/// A stored password hash (a PHC string, or a bcrypt hash awaiting its
/// upgrade). Only the hashing pool reads it; its `Debug` shows nothing.
#[derive(Clone)]
pub struct StoredHash(String);

impl StoredHash {
    /// The PHC or bcrypt text, for the password check.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for StoredHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredHash(<redacted>)")
    }
}

/// Reads a row selected with the `u.` user columns (`id`, `email`,
/// `username`, `name`, `role`, `disabled`, `password_changed_at`, `email_verified`,
/// `created_at`, `updated_at`).
pub(super) fn from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        role: role
            .parse()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        email_verified: row.try_get::<i64, _>("email_verified")? != 0,
        password_changed_at: row.try_get("password_changed_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What registration stores.
#[derive(Debug)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub email_key: &'a str,
    pub username: &'a str,
    pub username_key: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

pub async fn insert(pool: &AnyPool, user: &NewUser<'_>, now: i64) -> Result<User, sqlx::Error> {
    let id = super::new_id();
    sqlx::query(
        "INSERT INTO users (id, email, email_key, username, username_key, name, role, password_hash, \
         disabled, password_changed_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $9, $9)",
    )
    .bind(&id)
    .bind(user.email)
    .bind(user.email_key)
    .bind(user.username)
    .bind(user.username_key)
    .bind(user.name)
    .bind(user.role.as_str())
    .bind(user.password_hash)
    .bind(now)
    .execute(pool)
    .await?;
    find_by_id(pool, &id).await?.ok_or(sqlx::Error::RowNotFound)
}

/// An account from another application (`palisade import-users`).
#[derive(Debug)]
pub struct Imported<'a> {
    pub email: &'a str,
    pub email_key: &'a str,
    pub username: &'a str,
    pub username_key: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
    pub disabled: bool,
    pub created_at: i64,
}

/// Inserts an imported account under `id`, its hash as it came.
pub async fn import<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    user: &Imported<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, email, email_key, username, username_key, name, role, password_hash, \
         disabled, password_changed_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $10)",
    )
    .bind(id)
    .bind(user.email)
    .bind(user.email_key)
    .bind(user.username)
    .bind(user.username_key)
    .bind(user.name)
    .bind(user.role.as_str())
    .bind(user.password_hash)
    .bind(i64::from(user.disabled))
    .bind(user.created_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn find_by_id<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.disabled, \
         u.password_changed_at, u.email_verified, u.created_at, u.updated_at FROM users u WHERE u.id = $1",
    )
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// By username or email, case-insensitively (`key` is already lower-cased),
/// with the stored hash the login checks the password against.
pub async fn find_by_login(
    pool: &AnyPool,
    key: &str,
) -> Result<Option<(User, StoredHash)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.disabled, \
         u.password_changed_at, u.email_verified, u.created_at, u.updated_at, u.password_hash FROM users u \
         WHERE u.username_key = $1 OR u.email_key = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.map(|r| Ok((from_row(&r)?, StoredHash(r.try_get("password_hash")?))))
        .transpose()
}

/// The stored hash of one user, for a re-authentication.
pub async fn password_hash(pool: &AnyPool, id: &str) -> Result<Option<StoredHash>, sqlx::Error> {
    let row = sqlx::query("SELECT password_hash FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.map(|r| r.try_get("password_hash").map(StoredHash))
        .transpose()
}

/// Which unique key a failed insert or update collided with: `"email"`
/// or `"username"`; `None` if `err` is not a unique-key violation.
pub fn taken_by(err: &sqlx::Error) -> Option<&'static str> {
    super::violated_unique(err, &["email_key", "username_key"]).map(|column| match column {
        "email_key" => "email",
        _ => "username",
    })
}

/// Which unique key is taken: `"email"`, `"username"` or neither.
pub async fn taken(
    pool: &AnyPool,
    email_key: &str,
    username_key: &str,
) -> Result<Option<&'static str>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT SUM(CASE WHEN email_key = $1 THEN 1 ELSE 0 END) AS emails, \
         SUM(CASE WHEN username_key = $2 THEN 1 ELSE 0 END) AS usernames \
         FROM users WHERE email_key = $1 OR username_key = $2",
    )
    .bind(email_key)
    .bind(username_key)
    .fetch_one(pool)
    .await?;
    let emails: Option<i64> = row.try_get("emails")?;
    let usernames: Option<i64> = row.try_get("usernames")?;
    Ok(if emails.unwrap_or(0) > 0 {
        Some("email")
    } else if usernames.unwrap_or(0) > 0 {
        Some("username")
    } else {
        None
    })
}

/// Changes the name and/or username.
pub async fn update_profile(
    pool: &AnyPool,
    id: &str,
    name: Option<&str>,
    username: Option<(&str, &str)>,
    now: i64,
) -> Result<(), sqlx::Error> {
    let (username, username_key) = username.unzip();
    sqlx::query(
        "UPDATE users SET name = COALESCE($2, name), username = COALESCE($3, username), \
         username_key = COALESCE($4, username_key), updated_at = $5 WHERE id = $1",
    )
    .bind(id)
    .bind(name)
    .bind(username)
    .bind(username_key)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets a new password (a user's change: every older token dies).
pub async fn set_password<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(())
}

/// Marks the address of `id` verified, if it is still `email` (a token
/// issued for an address the user has since left verifies nothing).
/// Returns whether it did.
pub async fn set_email_verified<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    email: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE users SET email_verified = 1, updated_at = $3 WHERE id = $1 AND email = $2",
    )
    .bind(id)
    .bind(email)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The account whose email key is `key` (for a password reset request).
pub async fn find_by_email_key(pool: &AnyPool, key: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.disabled, \
         u.password_changed_at, u.email_verified, u.created_at, u.updated_at FROM users u \
         WHERE u.email_key = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Replaces the hash of an unchanged password (an algorithm or parameter
/// upgrade): tokens stay valid. Only if the hash is still `old`, so a
/// concurrent password change wins.
pub async fn upgrade_hash(
    pool: &AnyPool,
    id: &str,
    old: &StoredHash,
    new: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
        .bind(id)
        .bind(old.expose())
        .bind(new)
        .execute(pool)
        .await?;
    Ok(())
}

/// Escapes `%`, `_` and `\` so that `text` matches itself in a `LIKE ...
/// ESCAPE '\'` pattern, folded as the keys are (NFKC, case folding), as a
/// substring.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in crate::domain::email::fold(text).chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A page of users in a stable order (oldest first), filtered by a
/// [`like_pattern`] over email, username and name.
pub async fn list(
    pool: &AnyPool,
    pattern: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<User>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.disabled, \
         u.password_changed_at, u.email_verified, u.created_at, u.updated_at FROM users u \
         WHERE $1 IS NULL OR u.email_key LIKE $1 ESCAPE '\\' OR u.username_key LIKE $1 ESCAPE '\\' \
         OR LOWER(u.name) LIKE $1 ESCAPE '\\' \
         ORDER BY u.created_at, u.id LIMIT $2 OFFSET $3",
    )
    .bind(pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// How many users [`list`] would page through.
pub async fn count(pool: &AnyPool, pattern: Option<&str>) -> Result<i64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM users u \
         WHERE $1 IS NULL OR u.email_key LIKE $1 ESCAPE '\\' OR u.username_key LIKE $1 ESCAPE '\\' \
         OR LOWER(u.name) LIKE $1 ESCAPE '\\'",
    )
    .bind(pattern)
    .fetch_one(pool)
    .await?;
    row.try_get("n")
}

/// Whether `id` is the last enabled super_admin. Takes the write locks on
/// every super_admin row first (PostgreSQL row locks, SQLite's database
/// lock) and holds them for the rest of the transaction, so the answer
/// cannot be raced by a concurrent demotion.
pub async fn is_last_super_admin(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    sqlx::query("UPDATE users SET updated_at = updated_at WHERE role = 'super_admin'")
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM users WHERE role = 'super_admin' AND disabled = 0 AND id <> $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(row.try_get::<i64, _>("n")? == 0)
}

/// Sets the role and/or the disabled flag.
pub async fn set_role_and_status<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
    role: Option<Role>,
    disabled: Option<bool>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET role = COALESCE($2, role), disabled = COALESCE($3, disabled), updated_at = $4 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(role.map(Role::as_str))
    .bind(disabled.map(i64::from))
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Deletes the user; sessions and refresh tokens go with it.
pub async fn delete<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Takes the write lock on one user row for the rest of the transaction.
pub async fn lock<'e>(ex: impl Executor<'e, Database = Any>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DatabaseSettings;
    use crate::storage::Db;

    async fn db(dir: &std::path::Path) -> Db {
        let settings = DatabaseSettings {
            url: None,
            max_connections: 1,
            acquire_timeout: std::time::Duration::from_secs(5),
            statement_timeout: std::time::Duration::from_secs(5),
        };
        let db = Db::connect(&settings, dir).await.unwrap();
        db.migrate().await.unwrap();
        db
    }

    fn new_user<'a>(email: &'a str, username: &'a str) -> NewUser<'a> {
        NewUser {
            email,
            email_key: email,
            username,
            username_key: username,
            name: "Someone",
            role: Role::User,
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        }
    }

    #[tokio::test]
    async fn a_taken_email_and_a_taken_username_are_told_apart_by_the_violated_key() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path()).await;
        let pool = db.pool();
        insert(pool, &new_user("ada@example.org", "ada"), 1)
            .await
            .unwrap();
        let err = insert(pool, &new_user("ada@example.org", "other"), 2)
            .await
            .unwrap_err();
        assert_eq!(taken_by(&err), Some("email"));
        let err = insert(pool, &new_user("other@example.org", "ada"), 3)
            .await
            .unwrap_err();
        assert_eq!(taken_by(&err), Some("username"));
        assert_eq!(taken_by(&sqlx::Error::RowNotFound), None);
    }

    #[tokio::test]
    async fn a_user_read_back_carries_no_hash_and_its_stored_hash_does_not_print() {
        let dir = tempfile::tempdir().unwrap();
        let db = db(dir.path()).await;
        let user = insert(db.pool(), &new_user("ada@example.org", "ada"), 1)
            .await
            .unwrap();
        assert!(!format!("{user:?}").contains("argon2"));
        let (_, stored) = find_by_login(db.pool(), "ada").await.unwrap().unwrap();
        assert!(stored.expose().starts_with("$argon2id$"));
        assert_eq!(format!("{stored:?}"), "StoredHash(<redacted>)");
    }
}

/// What [`rekey_emails`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Rekeyed {
    /// Keys rewritten.
    pub changed: u64,
    /// Accounts whose new key another account already holds: they keep
    /// their old key (and log in by username).
    pub collisions: u64,
    /// Stored addresses today's rules refuse (a mixed-script domain):
    /// they keep their old key.
    pub unparsable: u64,
}

/// The maintenance task of [`rekey_emails`].
const REKEY_EMAILS: &str = "email_key_nfkc_casefold";

/// Recomputes every email key under the current rules ([`Email::key`]),
/// once per database: accounts made before the keys were folded (NFKC,
/// case folding, one IDNA form) get the key they would get today. When two
/// accounts' addresses are now one, the account whose key is already the
/// new one (or, if neither, the older) holds it; the other keeps its old
/// key and is logged with both ids, for an operator to settle.
pub async fn rekey_emails(pool: &AnyPool) -> Result<Rekeyed, sqlx::Error> {
    let done = sqlx::query("SELECT task FROM maintenance WHERE task = $1")
        .bind(REKEY_EMAILS)
        .fetch_optional(pool)
        .await?;
    let mut report = Rekeyed::default();
    if done.is_some() {
        return Ok(report);
    }
    let rows = sqlx::query("SELECT id, email, email_key FROM users ORDER BY created_at, id")
        .fetch_all(pool)
        .await?;
    for row in rows {
        let id: String = row.try_get("id")?;
        let email: String = row.try_get("email")?;
        let old: String = row.try_get("email_key")?;
        let Ok(new) = Email::parse(&email).map(|e| e.key()) else {
            report.unparsable += 1;
            tracing::warn!(user_id = %id, "stored email address refused by today's rules; its key is kept");
            continue;
        };
        if new == old {
            continue;
        }
        let updated = sqlx::query("UPDATE users SET email_key = $2 WHERE id = $1")
            .bind(&id)
            .bind(&new)
            .execute(pool)
            .await;
        match updated {
            Ok(_) => report.changed += 1,
            Err(e) if super::violated_unique(&e, &["email_key"]).is_some() => {
                report.collisions += 1;
                let holder = sqlx::query("SELECT id FROM users WHERE email_key = $1")
                    .bind(&new)
                    .fetch_optional(pool)
                    .await?
                    .map(|r| r.try_get::<String, _>("id"))
                    .transpose()?;
                tracing::warn!(
                    user_id = %id,
                    holder = holder.as_deref().unwrap_or("?"),
                    "two accounts' email addresses are one under NFKC and case folding; this one keeps its old key and can log in by username"
                );
            }
            Err(e) => return Err(e),
        }
    }
    sqlx::query(
        "INSERT INTO maintenance (task, done_at) VALUES ($1, $2) ON CONFLICT (task) DO NOTHING",
    )
    .bind(REKEY_EMAILS)
    .bind(super::now_ms())
    .execute(pool)
    .await?;
    Ok(report)
}
