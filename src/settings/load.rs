//! Loading the settings in layers: the built-in defaults, then a TOML file,
//! then `.env`, then the process environment, then command-line flags. Each
//! layer overrides the one before, key by key (maps such as
//! `rate_limit.policies` merge entry by entry).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::raw::RawSettings;
use super::vars::{CONFIG_FILE_ENV, Kind, VARS};

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

/// Reads every layer into one raw settings tree, or lists every problem met.
pub fn load_raw(sources: &Sources) -> Result<RawSettings, Vec<String>> {
    let mut errors = Vec::new();
    let mut merged = match Table::try_from(RawSettings::default()) {
        Ok(table) => table,
        Err(e) => return Err(vec![format!("built-in defaults: {e}")]),
    };

    let file = sources
        .config_file
        .clone()
        .or_else(|| sources.env.get(CONFIG_FILE_ENV).map(PathBuf::from));
    if let Some(path) = file {
        match read_toml(&path) {
            Ok(table) => merge(&mut merged, table),
            Err(e) => errors.push(e),
        }
    }

    if let Some(path) = sources.dotenv.as_deref().filter(|p| p.is_file()) {
        match read_dotenv(path) {
            Ok(vars) => merge(&mut merged, env_layer(&vars, &mut errors)),
            Err(e) => errors.push(e),
        }
    }
    merge(&mut merged, env_layer(&sources.env, &mut errors));

    let mut flags = Table::new();
    if let Some(bind) = &sources.bind {
        insert_path(&mut flags, "server.bind", Value::String(bind.clone()));
    }
    if let Some(dir) = &sources.data_dir {
        insert_path(&mut flags, "server.data_dir", Value::String(dir.clone()));
    }
    merge(&mut merged, flags);

    match Value::Table(merged).try_into::<RawSettings>() {
        Ok(raw) if errors.is_empty() => Ok(raw),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.push(format!("settings: {}", e.message()));
            Err(errors)
        }
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

/// Turns the documented variables found in `env` into a settings table.
/// Unknown `PALISADE_*` variables are ignored (they may belong to a newer
/// or older release); malformed known ones are errors.
fn env_layer(env: &HashMap<String, String>, errors: &mut Vec<String>) -> Table {
    let mut table = Table::new();
    for var in VARS {
        let Some(text) = env.get(var.env) else {
            continue;
        };
        match convert(var.kind, text) {
            Ok(value) => insert_path(&mut table, var.key, value),
            Err(expected) => errors.push(format!("{}: expected {expected}, got {text:?}", var.env)),
        }
    }
    table
}

fn convert(kind: Kind, text: &str) -> Result<Value, &'static str> {
    let text = text.trim();
    Ok(match kind {
        Kind::Str | Kind::Secret => Value::String(text.to_owned()),
        Kind::Int => Value::Integer(text.parse().map_err(|_| "a whole number")?),
        Kind::Bool => Value::Boolean(match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => return Err("true or false"),
        }),
        Kind::List => Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Kind::Map => {
            let mut map = Table::new();
            for pair in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                let (k, v) = pair
                    .split_once('=')
                    .ok_or("`key=value` pairs separated by `;`")?;
                map.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
            }
            Value::Table(map)
        }
    })
}

fn insert_path(table: &mut Table, dotted: &str, value: Value) {
    let mut parts: Vec<&str> = dotted.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut current = table;
    for part in parts {
        let entry = current
            .entry(part.to_owned())
            .or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        let Value::Table(next) = entry else { return };
        current = next;
    }
    current.insert(last.to_owned(), value);
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Sources {
        Sources {
            env: pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
            ..Sources::default()
        }
    }

    #[test]
    fn environment_overrides_defaults_and_maps_merge_by_entry() {
        let raw = load_raw(&env(&[
            ("PALISADE_BODY_LIMIT", "42"),
            (
                "PALISADE_RATE_LIMIT_POLICIES",
                "data=1/second per ip; extra=2/hour per user",
            ),
            (
                "PALISADE_CORS_ALLOWED_ORIGINS",
                "https://a.example, https://b.example",
            ),
        ]))
        .unwrap();
        assert_eq!(raw.server.body_limit, 42);
        assert_eq!(raw.rate_limit.policies["data"], "1/second per ip");
        assert_eq!(raw.rate_limit.policies["extra"], "2/hour per user");
        assert_eq!(raw.rate_limit.policies["default"], "120/minute per ip");
        assert_eq!(
            raw.cors.allowed_origins,
            ["https://a.example", "https://b.example"]
        );
    }

    #[test]
    fn every_malformed_variable_is_reported_at_once() {
        let errors = load_raw(&env(&[
            ("PALISADE_BODY_LIMIT", "big"),
            ("PALISADE_DOCS", "maybe"),
        ]))
        .err()
        .unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("PALISADE_BODY_LIMIT"));
        assert!(errors[1].contains("PALISADE_DOCS"));
    }

    #[test]
    fn the_file_is_below_the_environment_and_flags_are_on_top() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[server]\nbind = \"127.0.0.1:1\"\nbody_limit = 7\n").unwrap();
        let mut sources = env(&[("PALISADE_BODY_LIMIT", "9")]);
        sources.config_file = Some(path);
        assert_eq!(load_raw(&sources).unwrap().server.body_limit, 9);
        assert_eq!(load_raw(&sources).unwrap().server.bind, "127.0.0.1:1");
        sources.bind = Some("127.0.0.1:2".into());
        assert_eq!(load_raw(&sources).unwrap().server.bind, "127.0.0.1:2");
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "[server]\nbnid = \"x\"\n").unwrap();
        let sources = Sources {
            config_file: Some(path),
            ..Sources::default()
        };
        let errors = load_raw(&sources).err().unwrap();
        assert!(errors[0].contains("bnid"), "{errors:?}");
    }

    #[test]
    fn dotenv_sits_below_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "PALISADE_BODY_LIMIT=5\nPALISADE_IPV6_PREFIX=48\n").unwrap();
        let mut sources = env(&[("PALISADE_BODY_LIMIT", "6")]);
        sources.dotenv = Some(path);
        let raw = load_raw(&sources).unwrap();
        assert_eq!(raw.server.body_limit, 6);
        assert_eq!(raw.server.ipv6_prefix, 48);
    }
}
