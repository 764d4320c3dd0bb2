//! `[rate_limit]`: named policies in the [`spec`](super::spec) language,
//! the routes they apply to, and the bounds of the limiter's memory. Every
//! policy a route names must exist.

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;

use super::reader::Reader;
use super::setting::Setting;
use super::spec::Spec;

/// `[rate_limit]`.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Policy names applied to every route not in `routes`.
    pub default: Vec<String>,
    pub policies: BTreeMap<String, Spec>,
    /// `"METHOD /path"` to policy names.
    pub routes: BTreeMap<String, Vec<String>>,
    pub max_keys: usize,
    pub sweep_interval: Duration,
}

impl RateLimitSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let enabled = r.flag(
            Setting::new("rate_limit.enabled", "PALISADE_RATE_LIMIT_ENABLED", "true")
                .help("Turn rate limiting on or off."),
        )?;
        let default = r
            .text(
                Setting::new(
                    "rate_limit.default",
                    "PALISADE_RATE_LIMIT_DEFAULT",
                    "default",
                )
                .help("Comma-separated policy names for every route not in `rate_limit.routes`."),
            )
            .map(|text| names(&text))?;
        let policy_texts = r.map(
            Setting::new(
                "rate_limit.policies",
                "PALISADE_RATE_LIMIT_POLICIES",
                concat!(
                    "default=120/minute per ip;",
                    "data=10/minute per ip;",
                    "login=5/minute per ip;",
                    "register=10/hour per ip;",
                    "ai=10/hour per user;",
                    "mail=3/hour per account;",
                    "mail_ip=20/hour per ip",
                ),
            )
            .note("the seven built-in policies below")
            .help("Named policies, merged over the built-in ones. Environment form: `name=spec;name2=spec`."),
        );
        let route_texts = r.map(
            Setting::new(
                "rate_limit.routes",
                "PALISADE_RATE_LIMIT_ROUTES",
                concat!(
                    "GET /api/data=data;",
                    "POST /auth/token=login;",
                    "POST /auth/login=login;",
                    "POST /auth/login/mfa=login;",
                    "POST /auth/password-reset/request=mail_ip,mail;",
                    "POST /auth/verify-email/request=mail_ip,mail;",
                    "POST /auth/register=register;",
                    "POST /ai/generate=ai",
                ),
            )
            .note("the built-in route table below")
            .help("Route to policy names, merged over the built-in table. Environment form: `GET /api/data=data;GET /health/live=default`."),
        );
        let mut policies = BTreeMap::new();
        for (name, text) in &policy_texts {
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_name {
                let why = format!("the name {name:?} may use only letters, digits, `_` and `-`");
                r.problem("rate_limit.policies", why);
            }
            let key = format!("rate_limit.policies.{name} = {text:?}");
            if let Some(spec) = r.check(&key, text.parse::<Spec>()) {
                policies.insert(name.clone(), spec);
            }
        }
        let known = |key: &str, list: &[String], r: &mut Reader| {
            for name in list.iter().filter(|name| !policy_texts.contains_key(*name)) {
                r.problem(
                    key,
                    format!("no policy named {name:?} in rate_limit.policies"),
                );
            }
        };
        known("rate_limit.default", &default, r);
        let mut routes = BTreeMap::new();
        for (route, list) in &route_texts {
            let list = names(list);
            let shape_ok = route.split_once(' ').is_some_and(|(m, path)| {
                Method::from_bytes(m.as_bytes()).is_ok()
                    && m == m.to_ascii_uppercase()
                    && path.starts_with('/')
            });
            if !shape_ok {
                r.problem(
                    "rate_limit.routes",
                    format!("{route:?} is not `METHOD /path`"),
                );
            }
            known(&format!("rate_limit.routes.{route:?}"), &list, r);
            routes.insert(route.clone(), list);
        }
        Some(Self {
            enabled,
            default,
            policies,
            routes,
            max_keys: r.int(
                Setting::new("rate_limit.max_keys", "PALISADE_RATE_LIMIT_MAX_KEYS", "1000000")
                    .range(1_000, 1 << 32)
                    .help("Most keys one policy keeps in memory; at the cap, the keys closest to a full bucket are evicted first. Also bounds the failed-login back-off table."),
            )?,
            sweep_interval: r.duration(
                Setting::new("rate_limit.sweep_interval", "PALISADE_RATE_LIMIT_SWEEP_INTERVAL", "30s")
                    .help("How often keys that no longer limit anything are dropped."),
            )?,
        })
    }
}

/// Comma-separated names, blanks dropped.
fn names(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}
