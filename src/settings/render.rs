//! The effective configuration as TOML, for `check-config`: every setting
//! that has a value, in the order the settings are declared, secrets
//! already replaced by `<redacted>` when recorded.

use serde::ser::{Serialize, SerializeMap, Serializer};
use toml::Value;

/// The effective values by dotted key, in reading order.
#[derive(Debug, Clone, Default)]
pub(super) struct Effective(Vec<(&'static str, Value)>);

impl Effective {
    pub(super) fn push(&mut self, key: &'static str, value: Value) {
        self.0.push((key, value));
    }

    /// The values as a TOML document: one table per section.
    pub(super) fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    /// The `(name, value)` pairs of each section, sections in first-seen order.
    fn sections(&self) -> Vec<(&str, Vec<(&str, &Value)>)> {
        let mut sections: Vec<(&str, Vec<(&str, &Value)>)> = Vec::new();
        for (key, value) in &self.0 {
            let (section, name) = key.split_once('.').unwrap_or(("", key));
            match sections.iter_mut().find(|(s, _)| *s == section) {
                Some((_, entries)) => entries.push((name, value)),
                None => sections.push((section, vec![(name, value)])),
            }
        }
        sections
    }
}

impl Serialize for Effective {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sections = self.sections();
        let mut map = serializer.serialize_map(Some(sections.len()))?;
        for (section, entries) in sections {
            map.serialize_entry(section, &Section(entries))?;
        }
        map.end()
    }
}

/// One section; plain values come before sub-tables, as TOML requires.
struct Section<'a>(Vec<(&'a str, &'a Value)>);

impl Serialize for Section<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        let (tables, values): (Vec<_>, Vec<_>) = self.0.iter().partition(|(_, v)| v.is_table());
        for (name, value) in values.into_iter().chain(tables) {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}
