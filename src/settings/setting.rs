//! The declaration of one setting: TOML key, environment variable, default,
//! bounds and help, written once where its section reads it (see
//! [`Reader`](super::reader::Reader)). The same declarations render the
//! configuration table of `docs/configuration.md`.

use toml::{Table, Value};

/// How a setting is written: the TOML type it takes in the file, and how
/// environment text (and the built-in default) is turned into that type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A string (also durations, addresses, names).
    Text,
    /// A string that is never printed.
    Secret,
    /// A whole number.
    Int,
    /// `true` or `false` (in the environment also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// An array of strings; comma-separated in the environment.
    List,
    /// A table of strings; `key=value` pairs separated by `;` in the environment.
    Map,
    /// An array of tables (`[[section.name]]`); a JSON array of objects in
    /// the environment.
    Tables,
}

impl Kind {
    /// Converts environment or default text, trimmed; the error says what
    /// was expected.
    pub(super) fn convert(self, text: &str) -> Result<Value, &'static str> {
        let text = text.trim();
        Ok(match self {
            Kind::Text | Kind::Secret => Value::String(text.to_owned()),
            Kind::Int => Value::Integer(text.parse().map_err(|_| self.expected())?),
            Kind::Bool => Value::Boolean(match text.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => return Err(self.expected()),
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
                    let (k, v) = pair.split_once('=').ok_or(self.expected())?;
                    map.insert(k.trim().to_owned(), Value::String(v.trim().to_owned()));
                }
                Value::Table(map)
            }
            Kind::Tables => {
                let value: Value = serde_json::from_str(text).map_err(|_| self.expected())?;
                if !self.fits(&value) {
                    return Err(self.expected());
                }
                value
            }
        })
    }

    /// Whether a value from the TOML file has this kind's type.
    pub(super) fn fits(self, value: &Value) -> bool {
        match (self, value) {
            (Kind::Text | Kind::Secret, Value::String(_))
            | (Kind::Int, Value::Integer(_))
            | (Kind::Bool, Value::Boolean(_)) => true,
            (Kind::List, Value::Array(items)) => items.iter().all(Value::is_str),
            (Kind::Map, Value::Table(map)) => map.values().all(Value::is_str),
            (Kind::Tables, Value::Array(items)) => items.iter().all(Value::is_table),
            _ => false,
        }
    }

    /// What a malformed value should have been.
    pub(super) fn expected(self) -> &'static str {
        match self {
            Kind::Text | Kind::Secret => "a string",
            Kind::Int => "a whole number",
            Kind::Bool => "true or false",
            Kind::List => "a list of strings",
            Kind::Map => "`key=value` pairs separated by `;`",
            Kind::Tables => "an array of tables (in the environment, a JSON array of objects)",
        }
    }
}

/// One setting. `default` is written as it would be in the environment and
/// goes through the same conversion and checks as a configured value.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setting {
    /// The dotted TOML key, e.g. `server.bind`.
    pub key: &'static str,
    pub env: Option<&'static str>,
    /// `None`: unset unless configured.
    pub default: Option<&'static str>,
    /// Inclusive bounds of a whole number.
    pub range: Option<(i64, i64)>,
    /// Shown after the default in the docs, or instead of it when the
    /// default says little (unset, or a map).
    pub note: Option<&'static str>,
    pub help: &'static str,
}

impl Setting {
    pub(super) const fn new(key: &'static str, env: &'static str, default: &'static str) -> Self {
        Self {
            key,
            env: Some(env),
            default: Some(default),
            range: None,
            note: None,
            help: "",
        }
    }

    /// A setting with no default.
    pub(super) const fn unset(key: &'static str, env: &'static str) -> Self {
        Self {
            default: None,
            ..Self::new(key, env, "")
        }
    }

    pub(super) const fn help(self, help: &'static str) -> Self {
        Self { help, ..self }
    }

    pub(super) const fn range(self, min: i64, max: i64) -> Self {
        Self {
            range: Some((min, max)),
            ..self
        }
    }

    pub(super) const fn note(self, note: &'static str) -> Self {
        Self {
            note: Some(note),
            ..self
        }
    }

    /// The default as the docs show it.
    fn shown_default(&self, kind: Kind) -> String {
        match (self.default, self.note) {
            (None, None) => "(unset)".into(),
            (Some(_), Some(note)) if kind == Kind::Map => note.into(),
            (None, Some(note)) => note.into(),
            (Some(""), None) => "(empty)".into(),
            (Some(""), Some(note)) => format!("(empty: {note})"),
            (Some(text), None) => format!("`{text}`"),
            (Some(text), Some(note)) => format!("`{text}` ({note})"),
        }
    }

    /// One row of the configuration table.
    pub(super) fn row(&self, kind: Kind) -> String {
        let env = self.env.map_or("(none)".into(), |e| format!("`{e}`"));
        let range = match self.range {
            Some((min, max)) => format!(" From {min} to {max}."),
            None => String::new(),
        };
        format!(
            "| {env} | `{}` | {} | {}{range} |\n",
            self.key,
            self.shown_default(kind),
            self.help
        )
    }
}

/// The header of the configuration table.
pub(super) const TABLE_HEADER: &str =
    "| environment variable | TOML key | default | meaning |\n|---|---|---|---|\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_text_is_converted_by_kind() {
        assert_eq!(Kind::Int.convert(" 42 "), Ok(Value::Integer(42)));
        assert_eq!(Kind::Bool.convert("On"), Ok(Value::Boolean(true)));
        assert_eq!(Kind::Bool.convert("maybe"), Err("true or false"));
        assert_eq!(
            Kind::List.convert("a, b,,"),
            Ok(Value::Array(vec!["a".into(), "b".into()]))
        );
        let map = Kind::Map.convert("GET /x=a,b; y = z").unwrap();
        assert_eq!(map["GET /x"].as_str(), Some("a,b"));
        assert_eq!(map["y"].as_str(), Some("z"));
        assert!(Kind::Map.convert("novalue").is_err());
    }

    #[test]
    fn a_row_shows_the_default_its_note_and_the_bounds() {
        let row = Setting::new("auth.hash_concurrency", "PALISADE_HASH_CONCURRENCY", "0")
            .range(0, 1024)
            .note("one per CPU core")
            .help("Hashes at once.")
            .row(Kind::Int);
        assert_eq!(
            row,
            "| `PALISADE_HASH_CONCURRENCY` | `auth.hash_concurrency` | `0` (one per CPU core) | Hashes at once. From 0 to 1024. |\n"
        );
    }
}
