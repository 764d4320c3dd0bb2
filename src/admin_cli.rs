//! Operator commands that work on the database directly: `migrate` and
//! `create-admin` (the only way to make a `super_admin`).

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use crate::accounts::User;
use crate::domain::password::Owner;
use crate::domain::{Email, Name, Role, Username};
use crate::settings::Settings;
use crate::startup::build_state;
use crate::storage::{self, users};

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
        Ok(row) => {
            let user = User::from(&row);
            println!(
                "{}",
                serde_json::to_string_pretty(&user).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) if storage::is_unique_violation(&e) => {
            fail("an account with this email or username already exists")
        }
        Err(e) => fail(&format!("cannot create the account: {e}")),
    }
}
