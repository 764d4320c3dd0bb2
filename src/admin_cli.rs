//! Operator commands that work on the database directly: `migrate`,
//! `prune`, `backup`, `keys`, `create-admin` (the only way to make a
//! `super_admin`) and `users`.

mod import;

pub use import::run as import_users;

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use crate::admin::change::{self, Actor};
use crate::admin::rules::Action;
use crate::auth::audit::RequestContext;
use crate::auth::signing::KeySetSpec;
use crate::cli::{KeysCommand, UsersCommand};
use crate::domain::password::Owner;
use crate::domain::{Email, Name, Role, User, Username};
use crate::settings::Settings;
use axum::extract::FromRef;

use crate::startup::build_state;
use crate::state::AppState;
use crate::storage::{self, users};

/// `palisade prune [--dry-run]`: one JSON line of counts per table.
pub async fn prune(settings: Settings, dry_run: bool) -> ExitCode {
    let state = match build_state(settings).await {
        Ok(state) => state,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let retention = crate::startup::retention(&state.settings);
    let pool = state.db.pool();
    let now = storage::now_ms();
    let report = if dry_run {
        storage::prune::dry_run(pool, &retention, now).await
    } else {
        storage::prune::run(pool, &retention, now, storage::prune::BATCH).await
    };
    match report {
        Ok(report) => {
            let mut counts: serde_json::Map<String, serde_json::Value> = report
                .into_iter()
                .map(|(table, n)| (table.to_owned(), n.into()))
                .collect();
            match crate::auth::signing::prune(pool, &state.settings.auth, dry_run).await {
                Ok(n) => {
                    counts.insert("signing_keys".to_owned(), n.into());
                }
                Err(e) => return fail(&format!("pruning signing keys failed: {e:#}")),
            }
            let line = serde_json::json!({"dry_run": dry_run, "deleted": counts});
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("pruning failed: {e}")),
    }
}

/// `palisade keys rotate [--now] [--identity]` and `palisade keys list`:
/// one JSON line per key (never a private part). The sets are the
/// access-token keys (EdDSA/ES256) and, in gateway mode, the identity
/// keys.
pub async fn keys(settings: Settings, command: KeysCommand) -> ExitCode {
    let identity_only = matches!(command, KeysCommand::Rotate { identity: true, .. });
    let mut sets = Vec::new();
    if settings.auth.jwt_algorithm.is_asymmetric() && !identity_only {
        sets.push(KeySetSpec::access(&settings.auth));
    }
    if settings.gateway.enabled() {
        sets.push(KeySetSpec::identity(&settings.auth));
    }
    if identity_only && !settings.gateway.enabled() {
        return fail("the identity keys exist in gateway mode only (set gateway.upstream)");
    }
    if sets.is_empty() {
        return fail(
            "auth.jwt_algorithm is HS256, which signs with auth.jwt_secret: there is no key set (set PALISADE_JWT_ALGORITHM to EdDSA or ES256)",
        );
    }
    let state = match build_state(settings).await {
        Ok(state) => state,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let pool = state.db.pool();
    if let KeysCommand::Rotate { now, identity } = command {
        let spec = if identity {
            KeySetSpec::identity(&state.settings.auth)
        } else {
            KeySetSpec::access(&state.settings.auth)
        };
        match crate::auth::signing::rotate(pool, &state.mfa, &spec, now).await {
            Ok(row) => {
                tracing::info!(kid = %row.kid, purpose = %row.purpose, active_from = row.active_from, "signing key rotated");
                println!(
                    "{}",
                    serde_json::json!({"rotated": row.kid, "purpose": row.purpose, "alg": row.alg, "signs_from": crate::domain::rfc3339(row.active_from)})
                );
            }
            Err(e) => return fail(&format!("{e:#}")),
        }
    }
    let now = storage::now_ms();
    for spec in &sets {
        let rows = match storage::signing_keys::list(pool, spec.purpose.as_str(), spec.alg.as_str())
            .await
        {
            Ok(rows) => rows,
            Err(e) => return fail(&format!("cannot read the key set: {e}")),
        };
        for (row, (state, until)) in rows
            .iter()
            .zip(crate::auth::signing::states(&rows, spec, now))
        {
            println!(
                "{}",
                serde_json::json!({
                    "kid": row.kid,
                    "purpose": row.purpose,
                    "alg": row.alg,
                    "state": state.as_str(),
                    "source": row.source,
                    "created_at": crate::domain::rfc3339(row.created_at),
                    "signs_from": crate::domain::rfc3339(row.active_from),
                    "verifies_until": until.map(crate::domain::rfc3339),
                })
            );
        }
    }
    ExitCode::SUCCESS
}

/// `palisade backup FILE`: the embedded database only.
pub async fn backup(settings: Settings, file: &std::path::Path) -> ExitCode {
    if settings.database.url.is_some() {
        return fail("backup copies the embedded SQLite database; for PostgreSQL use pg_dump");
    }
    if file.exists() {
        return fail(&format!("{} exists; name a new file", file.display()));
    }
    let state = match build_state(settings).await {
        Ok(state) => state,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let Some(target) = file.to_str() else {
        return fail("the file name is not UTF-8");
    };
    match storage::prune::backup_sqlite(state.db.pool(), target).await {
        Ok(()) => {
            // The copy holds password hashes: owner only.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600));
            }
            println!("{}", serde_json::json!({"backup": target}));
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("backup failed: {e}")),
    }
}

/// `palisade migrate`.
pub async fn migrate(settings: Settings) -> ExitCode {
    match build_state(settings).await {
        Ok(_) => {
            println!("database migrated");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("palisade: {message}");
    ExitCode::from(2)
}

/// Where `create-admin` reads the password from.
#[derive(Debug, Clone, Copy)]
pub enum PasswordSource {
    /// Prompt twice on the terminal.
    Prompt,
    /// One line on standard input.
    Stdin,
}

fn read_password(source: PasswordSource) -> Result<String, String> {
    match source {
        PasswordSource::Stdin => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            Ok(line.trim_end_matches(['\r', '\n']).to_owned())
        }
        PasswordSource::Prompt => {
            if !std::io::stdin().is_terminal() {
                return Err("no terminal to prompt on: use --password-stdin".into());
            }
            let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
            let second =
                rpassword::prompt_password("Password again: ").map_err(|e| e.to_string())?;
            if first != second {
                return Err("the passwords differ".into());
            }
            Ok(first)
        }
    }
}

/// `palisade create-admin`.
pub async fn create_admin(
    settings: Settings,
    email: &str,
    username: &str,
    name: Option<&str>,
    source: PasswordSource,
) -> ExitCode {
    let name = name.unwrap_or(username);
    let (email, username, name) = match (
        Email::parse(email),
        Username::parse(username),
        Name::parse(name),
    ) {
        (Ok(e), Ok(u), Ok(n)) => (e, u, n),
        (e, u, n) => {
            let problems: Vec<String> = [
                ("--email", e.err()),
                ("--username", u.err()),
                ("--name", n.err()),
            ]
            .into_iter()
            .filter_map(|(flag, err)| err.map(|m| format!("{flag} {m}")))
            .collect();
            return fail(&problems.join("; "));
        }
    };
    let password = match read_password(source) {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let state = match build_state(settings).await {
        Ok(state) => state,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let owner = Owner {
        username: username.as_str(),
        email: email.as_str(),
        name: name.as_str(),
    };
    let password = match state.passwords.check(&password, owner) {
        Ok(p) => p,
        Err(e) => return fail(&format!("the password {e}")),
    };
    let hash = match state.hasher.hash(password.expose().to_owned()).await {
        Ok(h) => h,
        Err(e) => return fail(&format!("cannot hash the password: {e}")),
    };
    let new = users::NewUser {
        email: email.as_str(),
        email_key: &email.key(),
        username: username.as_str(),
        username_key: &username.key(),
        name: name.as_str(),
        role: Role::SuperAdmin,
        password_hash: &hash,
    };
    match users::insert(state.db.pool(), &new, storage::now_ms()).await {
        Ok(user) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&user).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => match users::taken_by(&e) {
            Some(field) => fail(&format!("an account with this {field} already exists")),
            None => fail(&format!("cannot create the account: {e}")),
        },
    }
}

/// `palisade users ...`.
pub async fn users(settings: Settings, command: UsersCommand) -> ExitCode {
    let state = match build_state(settings).await {
        Ok(state) => state,
        Err(e) => return fail(&format!("{e:#}")),
    };
    match run_users(&state, command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn find(state: &AppState, who: &str) -> Result<User, String> {
    let pool = state.db.pool();
    let found = match users::find_by_id(pool, who).await {
        Ok(Some(user)) => Some(user),
        Ok(None) => users::find_by_login(pool, &crate::domain::email::login_key(who))
            .await
            .map_err(|e| e.to_string())?
            .map(|(user, _)| user),
        Err(e) => return Err(e.to_string()),
    };
    found.ok_or_else(|| format!("no user {who:?}"))
}

async fn run_users(state: &AppState, command: UsersCommand) -> Result<(), String> {
    let ctx = RequestContext::default();
    let (target, action) = match command {
        UsersCommand::List {
            search,
            page,
            limit,
        } => {
            if page < 1 || !(1..=100).contains(&limit) {
                return Err("--page must be 1 or more and --limit 1 to 100".into());
            }
            if search.as_ref().is_some_and(|s| s.chars().count() > 100) {
                return Err("--search must be at most 100 characters".into());
            }
            let pattern = search
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(users::like_pattern);
            let rows = users::list(
                state.db.pool(),
                pattern.as_deref(),
                limit,
                (page - 1).saturating_mul(limit),
            )
            .await
            .map_err(|e| e.to_string())?;
            for user in &rows {
                println!("{}", serde_json::to_string(user).unwrap_or_default());
            }
            return Ok(());
        }
        UsersCommand::SetRole { user, role } => {
            let role: Role = role.parse()?;
            (
                find(state, &user).await?,
                Action::Update {
                    role: Some(role),
                    disabled: None,
                },
            )
        }
        UsersCommand::RemoveMfa { user } => {
            let user = find(state, &user).await?;
            return remove_mfa(state, &ctx, &user).await;
        }
        UsersCommand::Disable { user, enable } => (
            find(state, &user).await?,
            Action::Update {
                role: None,
                disabled: Some(!enable),
            },
        ),
    };
    let after = change::apply(
        &state.db,
        &state.sessions,
        &ctx,
        Actor::Operator,
        &target.id,
        action,
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Some(user) = after {
        println!("{}", serde_json::to_string(&user).unwrap_or_default());
    }
    Ok(())
}

/// `palisade users remove-mfa`: the factor, its codes and every session
/// go; audited with actor `cli`; the owner gets a notice.
async fn remove_mfa(state: &AppState, ctx: &RequestContext, user: &User) -> Result<(), String> {
    let pool = state.db.pool();
    let removed = crate::storage::mfa::remove(pool, &user.id)
        .await
        .map_err(|e| e.to_string())?;
    if !removed {
        return Err(format!("{} has no second factor", user.username));
    }
    let now = crate::storage::now_ms();
    crate::storage::sessions::end_all(
        pool,
        &user.id,
        None,
        crate::storage::sessions::EndReason::Disabled,
        now,
    )
    .await
    .map_err(|e| e.to_string())?;
    state.sessions.invalidate(&user.id).await;
    crate::auth::audit::record_by(
        &state.db,
        crate::auth::audit::Event::MfaDisabled,
        ctx,
        Some("cli"),
        Some(&user.id),
        Some("removed by an operator"),
    )
    .await
    .map_err(|e| e.to_string())?;
    let auth = crate::auth::AuthState::from_ref(state);
    crate::auth::notices::notify(&auth, user, &crate::auth::notices::Notice::MfaDisabled);
    // The notice is queued: let it go out before the process ends.
    let unsent = state.mailer.drain(std::time::Duration::from_secs(30)).await;
    if unsent > 0 {
        eprintln!("the notice to the user could not be sent in 30 s");
    }
    println!("{}", serde_json::to_string(user).unwrap_or_default());
    Ok(())
}
