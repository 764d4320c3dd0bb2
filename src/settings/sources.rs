//! Where settings come from, and reading those sources into layers: the
//! TOML file, `.env`, the process environment and the command-line flags.
//! The built-in defaults are the bottom layer; they live in the declarations.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

/// The environment variable that names the TOML settings file. Only the real
/// environment is consulted for it, not `.env`.
pub(super) const CONFIG_FILE_ENV: &str = "PALISADE_CONFIG";

/// Where settings come from. `Sources::from_process` reads the real process;
/// tests build one by hand so that they never touch global state.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--config FILE`; if absent, `PALISADE_CONFIG` names the file.
    pub config_file: Option<PathBuf>,
    /// The `.env` file to read, if it exists.
    pub dotenv: Option<PathBuf>,
    /// The environment variables.
    pub env: HashMap<String, String>,
    /// `--bind HOST:PORT`.
    pub bind: Option<String>,
    /// `--data-dir DIR`.
    pub data_dir: Option<String>,
}

impl Sources {
    /// The sources of a real process: its environment and `./.env`.
    pub fn from_process() -> Self {
        Self {
            dotenv: Some(PathBuf::from(".env")),
            env: std::env::vars().collect(),
            ..Self::default()
        }
    }
}

/// The sources, read. Problems met while reading them (an unreadable file,
/// bad TOML) are kept to be reported with all the others.
#[derive(Debug, Default)]
pub(super) struct Layers {
    pub file: Table,
    /// `.env` first, then the process environment, which overrides it.
    pub envs: [HashMap<String, String>; 2],
    /// TOML key to flag value.
    pub flags: Vec<(&'static str, String)>,
    pub problems: Vec<String>,
}

impl Layers {
    pub(super) fn read(sources: &Sources) -> Self {
        let mut layers = Layers::default();
        let file = sources
            .config_file
            .clone()
            .or_else(|| sources.env.get(CONFIG_FILE_ENV).map(PathBuf::from));
        if let Some(path) = file {
            match read_toml(&path) {
                Ok(table) => layers.file = table,
                Err(e) => layers.problems.push(e),
            }
        }
        if let Some(path) = sources.dotenv.as_deref().filter(|p| p.is_file()) {
            match read_dotenv(path) {
                Ok(vars) => layers.envs[0] = vars,
                Err(e) => layers.problems.push(e),
            }
        }
        layers.envs[1].clone_from(&sources.env);
        let flags = [
            ("server.bind", &sources.bind),
            ("server.data_dir", &sources.data_dir),
        ];
        for (key, value) in flags {
            if let Some(value) = value {
                layers.flags.push((key, value.clone()));
            }
        }
        layers
    }

    /// The file's value for a dotted `section.name` key.
    pub(super) fn file_value(&self, key: &str) -> Option<&Value> {
        let (section, name) = key.split_once('.')?;
        self.file.get(section)?.as_table()?.get(name)
    }

    /// A problem for each key of the file that is not a `declared` one, so
    /// that a typo cannot silently leave a control at its default.
    pub(super) fn unknown_keys(&self, declared: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        for (section, value) in &self.file {
            let known: Vec<&str> = declared
                .iter()
                .filter_map(|key| key.strip_prefix(section.as_str())?.strip_prefix('.'))
                .collect();
            let hint = if known.is_empty() {
                String::new()
            } else {
                format!("; [{section}] takes {}", known.join(", "))
            };
            let Some(table) = value.as_table() else {
                problems.push(format!(
                    "{section}: unknown setting in the config file{hint}"
                ));
                continue;
            };
            for name in table.keys().filter(|name| !known.contains(&name.as_str())) {
                let why = "unknown setting in the config file";
                problems.push(format!("{section}.{name}: {why}{hint}"));
            }
        }
        problems
    }
}

fn read_toml(path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("config file {}: {e}", path.display()))?;
    text.parse::<Table>()
        .map_err(|e| format!("config file {}: {}", path.display(), e.message()))
}

fn read_dotenv(path: &Path) -> Result<HashMap<String, String>, String> {
    let iter = dotenvy::from_path_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
    iter.map(|item| item.map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;
    use crate::settings::tests::{env, problems, with_file};

    #[test]
    fn the_file_is_below_the_environment_and_flags_are_on_top() {
        let file = "[server]\nbind = \"127.0.0.1:1\"\nbody_limit = 7\n";
        let (_dir, mut sources) = with_file(file, env(&[("PALISADE_BODY_LIMIT", "9")]));
        let s = Settings::load(&sources).unwrap();
        assert_eq!((s.server.body_limit, s.server.bind.port()), (9, 1));
        sources.bind = Some("127.0.0.1:2".into());
        assert_eq!(Settings::load(&sources).unwrap().server.bind.port(), 2);
    }

    #[test]
    fn an_unknown_key_or_a_wrong_type_in_the_file_is_refused_and_named() {
        let file = "[server]\nbnid = \"x\"\nbody_limit = \"big\"\n[sever]\ndocs = true\n";
        let (_dir, sources) = with_file(file, Sources::default());
        let errors = problems(&sources);
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert_eq!(
            errors[0],
            "server.body_limit: expected a whole number, got \"big\""
        );
        assert!(
            errors[1].starts_with("server.bnid: unknown setting")
                && errors[1].contains("bind, data_dir")
        );
        assert!(errors[2].starts_with("sever.docs: unknown setting"));
    }

    #[test]
    fn dotenv_sits_below_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "PALISADE_BODY_LIMIT=5\nPALISADE_IPV6_PREFIX=48\n").unwrap();
        let mut sources = env(&[("PALISADE_BODY_LIMIT", "6")]);
        sources.dotenv = Some(path);
        let s = Settings::load(&sources).unwrap();
        assert_eq!((s.server.body_limit, s.server.ipv6_prefix), (6, 48));
    }

    #[test]
    fn a_secret_and_its_file_cannot_both_be_set_even_in_different_layers() {
        let (_dir, sources) = with_file(
            "[auth]\njwt_secret_file = \"/nonexistent\"\n",
            env(&[(
                "PALISADE_JWT_SECRET",
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
            )]),
        );
        let errors = problems(&sources);
        assert_eq!(
            errors,
            ["auth.jwt_secret: set either the value or the `_file` variant, not both"]
        );
    }
}
