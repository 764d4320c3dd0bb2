//! The policy language: `N/second|minute|hour|day [per KEY]`, where KEY is
//! `ip`, `user`, `account` or a `+`-joined combination (`ip+account`).
//! Without `per`, the key is the client IP.

use std::fmt;
use std::num::NonZeroU32;
use std::time::Duration;

/// What a policy counts requests by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyParts {
    pub ip: bool,
    pub user: bool,
    pub account: bool,
}

impl fmt::Display for KeyParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<&str> = [
            (self.ip, "ip"),
            (self.user, "user"),
            (self.account, "account"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&parts.join("+"))
    }
}

/// A parsed limit: `count` requests per `period`, as a burst of `count`
/// refilled evenly over `period` (GCRA).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    pub count: NonZeroU32,
    pub period: Duration,
    pub key: KeyParts,
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            1 => "second",
            60 => "minute",
            3600 => "hour",
            _ => "day",
        };
        write!(f, "{}/{unit} per {}", self.count, self.key)
    }
}

/// Why a spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("expected `N/second|minute|hour|day [per ip|user|account]`")]
    Shape,
    #[error("the count must be a whole number from 1 to 4294967295")]
    Count,
    #[error("unknown period {0:?}: use second, minute, hour or day")]
    Period(String),
    #[error("unknown key {0:?}: use ip, user, account, or a + combination")]
    Key(String),
}

impl std::str::FromStr for Spec {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut words = text.split_whitespace();
        let rate = words.next().ok_or(SpecError::Shape)?;
        let key = match (words.next(), words.next(), words.next()) {
            (None, _, _) => KeyParts {
                ip: true,
                ..KeyParts::default()
            },
            (Some("per"), Some(key), None) => parse_key(key)?,
            _ => return Err(SpecError::Shape),
        };
        let (count, unit) = rate.split_once('/').ok_or(SpecError::Shape)?;
        let count = count.parse::<NonZeroU32>().map_err(|_| SpecError::Count)?;
        let period = match unit.to_ascii_lowercase().as_str() {
            "second" | "s" => Duration::from_secs(1),
            "minute" | "m" => Duration::from_secs(60),
            "hour" | "h" => Duration::from_secs(3600),
            "day" | "d" => Duration::from_secs(86_400),
            _ => return Err(SpecError::Period(unit.to_owned())),
        };
        Ok(Spec { count, period, key })
    }
}

fn parse_key(text: &str) -> Result<KeyParts, SpecError> {
    let mut key = KeyParts::default();
    for part in text.split('+') {
        let slot = match part.to_ascii_lowercase().as_str() {
            "ip" => &mut key.ip,
            "user" => &mut key.user,
            "account" => &mut key.account,
            _ => return Err(SpecError::Key(part.to_owned())),
        };
        if *slot {
            return Err(SpecError::Key(part.to_owned()));
        }
        *slot = true;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_seed_spec_parses_to_ten_per_minute_by_ip() {
        let spec: Spec = "10/minute".parse().unwrap();
        assert_eq!(spec.count.get(), 10);
        assert_eq!(spec.period, Duration::from_secs(60));
        assert!(spec.key.ip && !spec.key.user && !spec.key.account);
    }

    #[test]
    fn a_combined_key_parses() {
        let spec: Spec = "5/hour per ip+account".parse().unwrap();
        assert!(spec.key.ip && spec.key.account && !spec.key.user);
    }

    #[test]
    fn malformed_specs_are_refused() {
        for bad in [
            "",
            "10",
            "0/minute",
            "-1/minute",
            "10/fortnight",
            "ten/minute",
            "10/minute per",
            "10/minute per host",
            "10/minute by ip",
            "10/minute per ip+ip",
            "10/minute per ip extra",
            "99999999999/second",
        ] {
            assert!(bad.parse::<Spec>().is_err(), "{bad:?} was accepted");
        }
    }

    proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,40}") {
            let _ = text.parse::<Spec>();
        }

        #[test]
        fn every_valid_spec_round_trips(
            count in 1u32..=u32::MAX,
            unit in prop::sample::select(vec!["second", "minute", "hour", "day"]),
            key in prop::sample::select(vec!["ip", "user", "account", "ip+account", "user+ip", "ip+user+account"]),
        ) {
            let text = format!("{count}/{unit} per {key}");
            let spec: Spec = text.parse().unwrap();
            prop_assert_eq!(spec.count.get(), count);
            let again: Spec = spec.to_string().parse().unwrap();
            prop_assert_eq!(again, spec);
        }
    }
}
