//! The `users` table.

use sqlx::any::AnyRow;
use sqlx::{Any, AnyConnection, AnyPool, Executor, Row};

use crate::domain::Role;

/// A stored user. `password_hash` never leaves the server.
#[derive(Clone)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub username: String,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    pub password_changed_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for UserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRow")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("role", &self.role)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// Reads a row selected with the `u.` user columns.
pub fn from_row(row: &AnyRow) -> Result<UserRow, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(UserRow {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        role: role
            .parse()
            .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
        password_hash: row.try_get("password_hash")?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
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

pub async fn insert(pool: &AnyPool, user: &NewUser<'_>, now: i64) -> Result<UserRow, sqlx::Error> {
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

pub async fn find_by_id<'e>(
    ex: impl Executor<'e, Database = Any>,
    id: &str,
) -> Result<Option<UserRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.password_hash, u.disabled, \
         u.password_changed_at, u.created_at, u.updated_at FROM users u WHERE u.id = $1",
    )
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// By username or email, case-insensitively (`key` is already lower-cased).
pub async fn find_by_login(pool: &AnyPool, key: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.password_hash, u.disabled, \
         u.password_changed_at, u.created_at, u.updated_at FROM users u \
         WHERE u.username_key = $1 OR u.email_key = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(from_row).transpose()
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
pub async fn set_password(
    pool: &AnyPool,
    id: &str,
    hash: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// Replaces the hash of an unchanged password (an algorithm or parameter
/// upgrade): tokens stay valid. Only if the hash is still `old`, so a
/// concurrent password change wins.
pub async fn upgrade_hash(
    pool: &AnyPool,
    id: &str,
    old: &str,
    new: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
        .bind(id)
        .bind(old)
        .bind(new)
        .execute(pool)
        .await?;
    Ok(())
}

/// Escapes `%`, `_` and `\` so that `text` matches itself in a `LIKE ...
/// ESCAPE '\'` pattern, lower-cased, as a substring.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.to_lowercase().chars() {
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
) -> Result<Vec<UserRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT u.id, u.email, u.username, u.name, u.role, u.password_hash, u.disabled, \
         u.password_changed_at, u.created_at, u.updated_at FROM users u \
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
