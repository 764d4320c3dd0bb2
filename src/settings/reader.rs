//! The reader that each section's builder asks for its settings, one call
//! per setting with that setting's declaration. It resolves the value by
//! layer (flag, environment, `.env`, file, default; maps merge entry by
//! entry), parses it to its real type, and records every problem, every
//! setting asked for (for the docs and to refuse unknown keys) and every
//! effective value (for `check-config`).
//!
//! Every layer's value must have the setting's shape, even when a higher
//! layer overrides it. A value that fails to parse is reported and the
//! default stands in for it, so that the builders go on to find the other
//! problems; `Settings::load` then fails.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use toml::Value;

use super::render::Effective;
use super::setting::{Kind, Setting};
use super::sources::Layers;

/// Reads declared settings from the layers.
#[derive(Debug)]
pub(super) struct Reader {
    layers: Layers,
    problems: Vec<String>,
    seen: Vec<(Setting, Kind)>,
    effective: Effective,
}

/// What a reader leaves when every section has been read.
#[derive(Debug)]
pub(super) struct Finished {
    pub problems: Vec<String>,
    pub effective: Effective,
    /// Every setting read, in order.
    pub seen: Vec<(Setting, Kind)>,
}

impl Reader {
    pub(super) fn new(mut layers: Layers) -> Self {
        Self {
            problems: std::mem::take(&mut layers.problems),
            layers,
            seen: Vec::new(),
            effective: Effective::default(),
        }
    }

    /// Records a problem with the setting `key`.
    pub(super) fn problem(&mut self, key: &str, why: impl Display) {
        self.problems.push(format!("{key}: {why}"));
    }

    /// The value of `result`, or `None` with the error recorded under `key`.
    pub(super) fn check<T, E: Display>(&mut self, key: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.problem(key, e)).ok()
    }

    /// How many problems are recorded so far.
    pub(super) fn problem_count(&self) -> usize {
        self.problems.len()
    }

    /// A string setting, parsed by `parse`.
    pub(super) fn parse<T, E: Display>(
        &mut self,
        s: Setting,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Option<T> {
        self.typed(s, Kind::Text, |v| {
            parse(v.as_str().unwrap_or_default()).map_err(|e| e.to_string())
        })
    }

    /// A string setting, as written.
    pub(super) fn text(&mut self, s: Setting) -> Option<String> {
        self.parse(s, |text| Ok::<_, String>(text.to_owned()))
    }

    /// A duration longer than zero.
    pub(super) fn duration(&mut self, s: Setting) -> Option<Duration> {
        self.parse(s, positive_duration)
    }

    /// A whole number within the declared range that fits `T`.
    pub(super) fn int<T: TryFrom<i64>>(&mut self, s: Setting) -> Option<T> {
        self.typed(s, Kind::Int, |v| {
            let n = v.as_integer().unwrap_or_default();
            match s.range {
                Some((min, max)) if !(min..=max).contains(&n) => {
                    Err(format!("{n} is outside {min}..={max}"))
                }
                _ => T::try_from(n).map_err(|_| format!("{n} is too large")),
            }
        })
    }

    /// A boolean.
    pub(super) fn flag(&mut self, s: Setting) -> Option<bool> {
        self.typed(s, Kind::Bool, |v| Ok(v.as_bool().unwrap_or_default()))
    }

    /// A list; each item that `parse` refuses is a problem and left out.
    pub(super) fn list<T, E: Display>(
        &mut self,
        s: Setting,
        parse: impl Fn(&str) -> Result<T, E>,
    ) -> Vec<T> {
        let Some(Value::Array(items)) = self.resolve(s, Kind::List).0 else {
            return Vec::new();
        };
        let items = items.iter().filter_map(Value::as_str);
        items
            .filter_map(|item| self.check(s.key, parse(item)))
            .collect()
    }

    /// A list of strings, as written.
    pub(super) fn strings(&mut self, s: Setting) -> Vec<String> {
        self.list(s, |item| Ok::<_, String>(item.to_owned()))
    }

    /// A map of strings, the layers merged entry by entry.
    pub(super) fn map(&mut self, s: Setting) -> BTreeMap<String, String> {
        let Some(Value::Table(map)) = self.resolve(s, Kind::Map).0 else {
            return BTreeMap::new();
        };
        map.into_iter()
            .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
            .collect()
    }

    /// An array of tables, as written; the highest layer that sets it
    /// replaces the lower ones whole.
    pub(super) fn tables(&mut self, s: Setting) -> Vec<toml::Table> {
        let Some(Value::Array(items)) = self.resolve(s, Kind::Tables).0 else {
            return Vec::new();
        };
        items
            .into_iter()
            .filter_map(|item| match item {
                Value::Table(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    /// A secret given inline (`secret`) or read from a file (`file`), never
    /// both, even from different layers. A trailing newline in the file is
    /// ignored. `None` when neither is set.
    pub(super) fn secret(&mut self, secret: Setting, file: Setting) -> Option<String> {
        let inline = self.typed(secret, Kind::Secret, |v| Ok(v.as_str().map(String::from)));
        let path = self.text(file);
        match (inline.flatten(), path) {
            (Some(_), Some(_)) => {
                let why = "set either the value or the `_file` variant, not both";
                self.problem(secret.key, why);
                None
            }
            (Some(text), None) => Some(text),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"));
                let text = self.check(file.key, text)?;
                Some(text.trim_end_matches(['\r', '\n']).to_owned())
            }
            (None, None) => None,
        }
    }

    /// Refuses the file's keys that no setting read, and hands back the
    /// problems, the effective values and the settings read.
    pub(super) fn finish(mut self) -> Finished {
        let declared: Vec<&str> = self.seen.iter().map(|(s, _)| s.key).collect();
        self.problems.extend(self.layers.unknown_keys(&declared));
        Finished {
            problems: self.problems,
            effective: self.effective,
            seen: self.seen,
        }
    }

    /// Resolves and parses one setting; a value `parse` refuses is reported
    /// and replaced by the default.
    fn typed<T>(
        &mut self,
        s: Setting,
        kind: Kind,
        parse: impl Fn(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let (value, default) = self.resolve(s, kind);
        let value = value?;
        match parse(&value) {
            Ok(parsed) => Some(parsed),
            Err(why) => {
                self.problem(s.key, why);
                default.filter(|d| *d != value).and_then(|d| parse(&d).ok())
            }
        }
    }

    /// The effective value of `s` and its default, before parsing.
    fn resolve(&mut self, s: Setting, kind: Kind) -> (Option<Value>, Option<Value>) {
        self.seen.push((s, kind));
        let default = s.default.and_then(|text| {
            let value = kind.convert(text);
            let why = format!("the built-in default {text:?} is not {}", kind.expected());
            value.map_err(|_| self.problem(s.key, why)).ok()
        });
        let mut value = default.clone();
        if let Some(given) = self.layers.file_value(s.key).cloned() {
            if kind.fits(&given) {
                overlay(&mut value, given);
            } else {
                self.problem(s.key, format!("expected {}, got {given}", kind.expected()));
            }
        }
        if let Some(env) = s.env {
            let texts: Vec<String> = self
                .layers
                .envs
                .iter()
                .filter_map(|vars| vars.get(env).cloned())
                .collect();
            for text in texts {
                match kind.convert(&text) {
                    Ok(given) => overlay(&mut value, given),
                    Err(expected) => {
                        self.problem(env, format!("expected {expected}, got {text:?}"))
                    }
                }
            }
        }
        if let Some((_, flag)) = self.layers.flags.iter().find(|(key, _)| *key == s.key) {
            value = Some(Value::String(flag.clone()));
        }
        if let Some(v) = &value {
            let shown = match kind {
                Kind::Secret => Value::String("<redacted>".into()),
                _ => v.clone(),
            };
            self.effective.push(s.key, shown);
        }
        (value, default)
    }
}

/// Tables merge key by key; anything else is replaced.
fn overlay(base: &mut Option<Value>, over: Value) {
    match (base.as_mut(), over) {
        (Some(Value::Table(base)), Value::Table(over)) => base.extend(over),
        (_, over) => *base = Some(over),
    }
}

/// A duration, zero included.
pub(super) fn any_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| e.to_string())
}

/// A duration such as `30s`, `15m` or `7d`, longer than zero.
pub(super) fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{e} (write e.g. `30s`, `15m`, `7d`)"))?;
    if d.is_zero() {
        Err("must be longer than zero".into())
    } else {
        Ok(d)
    }
}
