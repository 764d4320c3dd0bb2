//! `[gateway]`: one upstream application behind Palisade, and the table of
//! path patterns that may reach it (deny by default). Each pattern says
//! whether a caller must be signed in, the least role, the API-key scope
//! and the rate-limit policies. The table is checked whole at load: bad
//! patterns, duplicate patterns, unknown roles, scopes and policies, and
//! unknown keys in a route are all reported together.

use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};
use url::Url;

use super::reader::Reader;
use super::setting::Setting;
use crate::domain::{Role, Scope};

/// `[gateway]`. Off while `upstream` is unset (the `Default`).
#[derive(Debug, Clone, Default)]
pub struct GatewaySettings {
    /// The application's base URL (`http` or `https`, no query, no
    /// fragment); requests keep their own path and query.
    pub upstream: Option<Url>,
    pub routes: Vec<GatewayRoute>,
    /// Whether the client's `Authorization` header reaches the upstream.
    pub forward_authorization: bool,
    pub connect_timeout: Duration,
    /// The longest wait for the upstream's response head.
    pub read_timeout: Duration,
    /// A PEM file of CA certificates an `https` upstream may chain to,
    /// besides the public roots.
    pub upstream_ca_file: Option<PathBuf>,
}

impl GatewaySettings {
    /// Whether the gateway is on.
    pub fn enabled(&self) -> bool {
        self.upstream.is_some()
    }

    /// The upstream as identities name it (`aud`): its URL without a
    /// trailing slash.
    pub fn audience(&self) -> Option<String> {
        self.upstream
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
    }

    /// The route for `path` ([`route_index`](Self::route_index)).
    pub fn route_for(&self, path: &str) -> Option<&GatewayRoute> {
        self.route_index(path).map(|i| &self.routes[i])
    }

    /// The position in `routes` of the route for `path`: an exact pattern
    /// (which also takes the path with a trailing `/`, as most frameworks
    /// do), else the longest prefix.
    pub fn route_index(&self, path: &str) -> Option<usize> {
        let bare = match path.strip_suffix('/') {
            Some(bare) if !bare.is_empty() => bare,
            _ => path,
        };
        let routes = self.routes.iter().enumerate();
        routes
            .clone()
            .find(|(_, r)| matches!(&r.pattern, RoutePattern::Exact(p) if p == path || p == bare))
            .or_else(|| {
                routes
                    .filter(|(_, r)| r.pattern.matches(path))
                    .max_by_key(|(_, r)| r.pattern.as_str().len())
            })
            .map(|(i, _)| i)
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAuth {
    /// A valid access token or (for a route with a scope) API key.
    Required,
    /// Anonymous callers pass without an identity; a credential that is
    /// sent must still be valid.
    Optional,
    /// No identity: credentials are not even read.
    None,
}

impl RouteAuth {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::None => "none",
        }
    }
}

/// A path pattern: an exact path, or a prefix written `/prefix/*`, which
/// matches `/prefix` and every path under `/prefix/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoutePattern {
    Exact(String),
    /// Kept without the `/*`.
    Prefix(String),
}

impl RoutePattern {
    fn parse(text: &str) -> Result<Self, String> {
        if !text.starts_with('/') {
            return Err(format!("{text:?} must start with `/`"));
        }
        let (base, prefix) = match text.strip_suffix("/*") {
            Some(base) => (base, true),
            None => (text, false),
        };
        let bad = |why: &str| Err(format!("{text:?}: {why}"));
        if base.contains('*') {
            return bad("`*` may only end a pattern, as `/prefix/*`");
        }
        if base
            .bytes()
            .any(|b| b.is_ascii_control() || b == b' ' || b == b'?' || b == b'#')
        {
            return bad("a pattern is a plain path, without spaces, `?` or `#`");
        }
        if base != "/"
            && base
                .split('/')
                .skip(1)
                .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return bad("a pattern has no empty, `.` or `..` segments");
        }
        Ok(if prefix {
            Self::Prefix(base.to_owned())
        } else {
            Self::Exact(base.to_owned())
        })
    }

    /// Whether `path` is this pattern's.
    pub fn matches(&self, path: &str) -> bool {
        match self {
            Self::Exact(p) => p == path,
            Self::Prefix(p) => path
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
        }
    }

    /// The pattern's path, without a prefix's `/*`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Exact(p) | Self::Prefix(p) => p,
        }
    }

    /// The pattern as written in the settings.
    pub fn to_text(&self) -> String {
        match self {
            Self::Exact(p) => p.clone(),
            Self::Prefix(p) => format!("{p}/*"),
        }
    }
}

/// One row of `gateway.routes`.
#[derive(Debug, Clone)]
pub struct GatewayRoute {
    pub pattern: RoutePattern,
    pub auth: RouteAuth,
    /// The least role a caller needs.
    pub role: Option<Role>,
    /// The scope an API key needs here; without one, keys are refused.
    pub scope: Option<Scope>,
    /// Rate-limit policy names; empty: `rate_limit.default`.
    pub limit: Vec<String>,
    /// Whether WebSocket upgrades pass.
    pub websocket: bool,
}

const ROUTE_KEYS: [&str; 6] = ["path", "auth", "role", "scope", "limit", "websocket"];

impl GatewaySettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let upstream = r.parse(
            Setting::unset("gateway.upstream", "PALISADE_GATEWAY_UPSTREAM")
                .note("(unset: no gateway)")
                .help("Gateway mode: the base URL (`http://` or `https://`) of the application Palisade forwards the requests of `gateway.routes` to. See docs/gateway.md."),
            parse_upstream,
        );
        let tables = r.tables(
            Setting::unset("gateway.routes", "PALISADE_GATEWAY_ROUTES")
                .note("(none)")
                .help("The paths forwarded to the upstream, as `[[gateway.routes]]` tables (`path`, `auth`, `role`, `scope`, `limit`, `websocket`); every other path is 404. Environment form: a JSON array of the same objects."),
        );
        let forward_authorization = r.flag(
            Setting::new(
                "gateway.forward_authorization",
                "PALISADE_GATEWAY_FORWARD_AUTHORIZATION",
                "false",
            )
            .help("Pass the client's `Authorization` header on to the upstream (off: the upstream gets Palisade's identity headers instead)."),
        )?;
        let connect_timeout = r.duration(
            Setting::new(
                "gateway.connect_timeout",
                "PALISADE_GATEWAY_CONNECT_TIMEOUT",
                "2s",
            )
            .help(
                "The longest wait for a connection to the upstream; past it the client gets 503.",
            ),
        )?;
        let read_timeout = r.duration(
            Setting::new(
                "gateway.read_timeout",
                "PALISADE_GATEWAY_READ_TIMEOUT",
                "25s",
            )
            .help("The longest wait for the upstream's response head from when the request starts being sent (past it the client gets 504), and the longest silence inside the answer's body (past it the answer is cut). Keep it below `server.request_timeout`."),
        )?;
        let upstream_ca_file = r
            .text(
                Setting::unset(
                    "gateway.upstream_ca_file",
                    "PALISADE_GATEWAY_UPSTREAM_CA_FILE",
                )
                .help("PEM CA certificates an `https` upstream's certificate may chain to, besides the public roots."),
            )
            .map(PathBuf::from);
        let mut routes = Vec::new();
        for (i, table) in tables.iter().enumerate() {
            let key = format!("gateway.routes[{i}]");
            match parse_route(table) {
                Ok(route) => routes.push(route),
                Err(problems) => {
                    for why in problems {
                        r.problem(&key, why);
                    }
                }
            }
        }
        for (i, route) in routes.iter().enumerate() {
            if routes[..i].iter().any(|o| o.pattern == route.pattern) {
                r.problem(
                    "gateway.routes",
                    format!(
                        "{} is listed twice: one of them could never match",
                        route.pattern.to_text()
                    ),
                );
            }
        }
        if upstream.is_none() && !routes.is_empty() {
            r.problem(
                "gateway.routes",
                "routes are set but `gateway.upstream` is not: set the application's URL",
            );
        }
        Some(Self {
            upstream,
            routes,
            forward_authorization,
            connect_timeout,
            read_timeout,
            upstream_ca_file,
        })
    }

    /// Problems of the routes' rate-limit policies: every name must be a
    /// policy, and account-keyed policies cannot apply (there is no
    /// account name in a forwarded request).
    pub(super) fn check_policies(&self, r: &mut Reader, policies: &[(&str, bool)]) {
        for (i, route) in self.routes.iter().enumerate() {
            for name in &route.limit {
                match policies.iter().find(|(n, _)| n == name) {
                    None => r.problem(
                        &format!("gateway.routes[{i}].limit"),
                        format!("{name:?} is not a rate-limit policy (`rate_limit.policies`)"),
                    ),
                    Some((_, true)) => r.problem(
                        &format!("gateway.routes[{i}].limit"),
                        format!("{name:?} is keyed per account, which a forwarded request has not: use a policy per ip or per user"),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
}

fn parse_upstream(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("takes no query or fragment: requests keep their own".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("takes no user name or password".into());
    }
    Ok(url)
}

/// One route table, or every problem it has.
fn parse_route(table: &Table) -> Result<GatewayRoute, Vec<String>> {
    let mut problems = Vec::new();
    for key in table.keys() {
        if !ROUTE_KEYS.contains(&key.as_str()) {
            problems.push(format!(
                "unknown key {key:?} (a route takes {})",
                ROUTE_KEYS.join(", ")
            ));
        }
    }
    let text = |name: &str, problems: &mut Vec<String>| match table.get(name) {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => {
            problems.push(format!("`{name}` must be a string, got {other}"));
            None
        }
    };
    let pattern = match text("path", &mut problems) {
        Some(p) => RoutePattern::parse(&p).map_err(|e| problems.push(e)).ok(),
        None => {
            problems.push("`path` is required".into());
            None
        }
    };
    let auth = match text("auth", &mut problems).as_deref() {
        Some("required") => Some(RouteAuth::Required),
        Some("optional") => Some(RouteAuth::Optional),
        Some("none") => Some(RouteAuth::None),
        Some(other) => {
            problems.push(format!(
                "`auth` is {other:?}; write required, optional or none"
            ));
            None
        }
        None => {
            problems.push("`auth` is required (required, optional or none)".into());
            None
        }
    };
    let role = text("role", &mut problems).and_then(|t| {
        t.parse::<Role>()
            .map_err(|e| problems.push(format!("`role`: {e}")))
            .ok()
    });
    let scope = text("scope", &mut problems).and_then(|t| {
        let scope = Scope::parse(&t);
        if scope.is_none() {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            problems.push(format!(
                "`scope` {t:?} is not a scope ({})",
                known.join(", ")
            ));
        }
        scope
    });
    let limit = text("limit", &mut problems)
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let websocket = match table.get("websocket") {
        None => false,
        Some(Value::Boolean(b)) => *b,
        Some(other) => {
            problems.push(format!("`websocket` must be true or false, got {other}"));
            false
        }
    };
    if auth == Some(RouteAuth::None) && (role.is_some() || scope.is_some()) {
        problems.push("a route with `auth = \"none\"` cannot ask for a role or a scope".into());
    }
    match (pattern, auth) {
        (Some(pattern), Some(auth)) if problems.is_empty() => Ok(GatewayRoute {
            pattern,
            auth,
            role,
            scope,
            limit,
            websocket,
        }),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> GatewayRoute {
        GatewayRoute {
            pattern: RoutePattern::parse(path).unwrap(),
            auth: RouteAuth::None,
            role: None,
            scope: None,
            limit: Vec::new(),
            websocket: false,
        }
    }

    #[test]
    fn a_prefix_matches_itself_and_what_is_under_it_only() {
        let p = RoutePattern::parse("/app/*").unwrap();
        assert!(p.matches("/app"));
        assert!(p.matches("/app/"));
        assert!(p.matches("/app/x/y"));
        assert!(!p.matches("/application"));
        assert!(!p.matches("/ap"));
        let all = RoutePattern::parse("/*").unwrap();
        assert!(all.matches("/anything") && all.matches("/"));
    }

    #[test]
    fn the_exact_pattern_wins_then_the_longest_prefix() {
        let settings = GatewaySettings {
            upstream: None,
            routes: vec![
                route("/*"),
                route("/app/*"),
                route("/app/admin/*"),
                route("/app/x"),
            ],
            forward_authorization: false,
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
            upstream_ca_file: None,
        };
        let found = |p: &str| settings.route_for(p).unwrap().pattern.to_text();
        assert_eq!(found("/app/x"), "/app/x");
        assert_eq!(found("/app/x/"), "/app/x");
        assert_eq!(found("/app/admin/users"), "/app/admin/*");
        assert_eq!(found("/app/y"), "/app/*");
        assert_eq!(found("/other"), "/*");
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "app", "/a/*/b", "/a*", "/a//b", "/a/../b", "/a/./*", "/a b", "/a?x",
        ] {
            assert!(RoutePattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_route_lists_all_its_problems() {
        let table: Table = toml::from_str(
            "path = 'x'\nauth = 'maybe'\nrole = 'boss'\nscope = 'x:y'\nwebsocket = 'yes'\nextra = 1",
        )
        .unwrap();
        let problems = parse_route(&table).unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:?}");
    }
}
