//! Raw settings to typed settings. Every check runs, and every failure is
//! collected with the name of the setting and the reason.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri, header};
use ipnet::IpNet;
use secrecy::SecretString;

use super::raw::RawSettings;
use super::secret::SigningSecret;
use super::*;

/// Collects problems while converting.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn check<T, E: std::fmt::Display>(&mut self, key: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.0.push(format!("{key}: {e}"))).ok()
    }
}

pub(super) fn validate(raw: RawSettings) -> Result<Settings, Vec<String>> {
    let mut p = Problems::default();
    let server = server(&raw, &mut p);
    let log = log(&raw, &mut p);
    let database = database(&raw, &mut p);
    let auth = auth(&raw, &mut p);
    if let (Some(db), Some(auth)) = (&database, &auth) {
        use secrecy::ExposeSecret;
        let shared = db
            .url
            .as_ref()
            .is_some_and(|u| !u.expose_secret().starts_with("sqlite:"));
        if shared && auth.jwt_secret.is_none() {
            p.0.push("auth.jwt_secret: PALISADE_JWT_SECRET (or PALISADE_JWT_SECRET_FILE) is required with a shared database, so every instance signs with the same secret".into());
        }
    }
    let cors = cors(&raw, &mut p);
    let headers = headers(&raw, &mut p);
    let rate_limit = rate_limit(&raw, &mut p);
    match (server, log, database, auth, cors, headers, rate_limit) {
        (
            Some(server),
            Some(log),
            Some(database),
            Some(auth),
            Some(cors),
            Some(headers),
            Some(rate_limit),
        ) if p.0.is_empty() => Ok(Settings {
            server,
            log,
            database,
            auth,
            cors,
            headers,
            rate_limit,
            raw,
        }),
        _ => Err(p.0),
    }
}

fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("{e} (write e.g. `30s`, `15m`, `7d`)"))?;
    if d.is_zero() {
        Err("must be longer than zero".into())
    } else {
        Ok(d)
    }
}

fn in_range(value: i64, lo: i64, hi: i64) -> Result<i64, String> {
    if (lo..=hi).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is outside {lo}..={hi}"))
    }
}

fn server(raw: &RawSettings, p: &mut Problems) -> Option<ServerSettings> {
    let s = &raw.server;
    let bind = p.check(
        "server.bind",
        s.bind
            .parse::<SocketAddr>()
            .map_err(|e| format!("{e} (write HOST:PORT)")),
    );
    let data_dir = p.check(
        "server.data_dir",
        if s.data_dir.trim().is_empty() {
            Err("must not be empty")
        } else {
            Ok(PathBuf::from(&s.data_dir))
        },
    );
    let request_timeout = p.check("server.request_timeout", duration(&s.request_timeout));
    let shutdown_timeout = p.check("server.shutdown_timeout", duration(&s.shutdown_timeout));
    let body_limit = p.check("server.body_limit", in_range(s.body_limit, 1, 1 << 30));
    let mut proxies = Vec::new();
    for text in &s.trusted_proxies {
        if let Some(net) = p.check("server.trusted_proxies", parse_net(text)) {
            proxies.push(net);
        }
    }
    let forwarded_header = p.check(
        "server.forwarded_header",
        match s.forwarded_header.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
            "forwarded" => Ok(ForwardedHeader::Forwarded),
            other => Err(format!("{other:?}: use x-forwarded-for or forwarded")),
        },
    );
    let ipv6_prefix = p.check("server.ipv6_prefix", in_range(s.ipv6_prefix, 16, 128));
    Some(ServerSettings {
        bind: bind?,
        data_dir: data_dir?,
        request_timeout: request_timeout?,
        shutdown_timeout: shutdown_timeout?,
        body_limit: usize::try_from(body_limit?).ok()?,
        trusted_proxies: proxies,
        forwarded_header: forwarded_header?,
        ipv6_prefix: u8::try_from(ipv6_prefix?).ok()?,
        docs: s.docs,
    })
}

/// A CIDR network, or a bare address meaning just that host.
fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not an address or a CIDR network"))
}

fn log(raw: &RawSettings, p: &mut Problems) -> Option<LogSettings> {
    let format = p.check(
        "log.format",
        match raw.log.format.to_ascii_lowercase().as_str() {
            "human" | "text" | "pretty" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?}: use `human` or `json`")),
        },
    );
    let level = p.check(
        "log.level",
        tracing_subscriber::EnvFilter::builder()
            .parse(&raw.log.level)
            .map(|_| raw.log.level.clone())
            .map_err(|e| e.to_string()),
    );
    Some(LogSettings {
        format: format?,
        level: level?,
    })
}

/// A secret given inline or by a file, never both.
fn secret_source(
    key: &str,
    inline: Option<&str>,
    file: Option<&str>,
    p: &mut Problems,
) -> Option<Option<String>> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            p.0.push(format!(
                "{key}: set either the value or the `_file` variant, not both"
            ));
            None
        }
        (Some(v), None) => Some(Some(v.to_owned())),
        (None, Some(path)) => p
            .check(
                &format!("{key}_file"),
                std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}")),
            )
            .map(|s| Some(s.trim_end_matches(['\r', '\n']).to_owned())),
        (None, None) => Some(None),
    }
}

fn database(raw: &RawSettings, p: &mut Problems) -> Option<DatabaseSettings> {
    let url = secret_source(
        "database.url",
        raw.database.url.as_ref().map(|r| r.0.as_str()),
        raw.database.url_file.as_deref(),
        p,
    )?;
    let url = url.filter(|u| !u.trim().is_empty());
    if let Some(u) = &url {
        let scheme = u.split(':').next().unwrap_or_default();
        if !matches!(scheme, "sqlite" | "postgres" | "postgresql") {
            p.0.push(format!(
                "database.url: unsupported scheme {scheme:?}; use sqlite: or postgres:"
            ));
        }
    }
    let max_connections = p.check(
        "database.max_connections",
        in_range(raw.database.max_connections, 1, 1000),
    )?;
    Some(DatabaseSettings {
        url: url.map(SecretString::from),
        max_connections: u32::try_from(max_connections).ok()?,
    })
}

fn auth(raw: &RawSettings, p: &mut Problems) -> Option<AuthSettings> {
    let a = &raw.auth;
    let secret = secret_source(
        "auth.jwt_secret",
        a.jwt_secret.as_ref().map(|r| r.0.as_str()),
        a.jwt_secret_file.as_deref(),
        p,
    );
    let jwt_secret = match secret {
        Some(Some(text)) => p.check(
            "auth.jwt_secret (PALISADE_JWT_SECRET)",
            SigningSecret::parse(&text),
        ),
        _ => None,
    };
    let non_empty = |key: &str, v: &str, p: &mut Problems| {
        p.check(
            key,
            if v.trim().is_empty() {
                Err("must not be empty")
            } else {
                Ok(v.trim().to_owned())
            },
        )
    };
    let issuer = non_empty("auth.issuer", &a.issuer, p);
    let audience = non_empty("auth.audience", &a.audience, p);
    let access = p.check("auth.access_token_ttl", duration(&a.access_token_ttl));
    let refresh = p.check("auth.refresh_token_ttl", duration(&a.refresh_token_ttl));
    let session = p.check("auth.session_lifetime", duration(&a.session_lifetime));
    let grace = p.check(
        "auth.refresh_reuse_grace",
        humantime::parse_duration(&a.refresh_reuse_grace).map_err(|e| e.to_string()),
    );
    let leeway = p.check(
        "auth.leeway",
        humantime::parse_duration(&a.leeway).map_err(|e| e.to_string()),
    );
    let mut roles = Vec::new();
    for name in &a.self_registration_roles {
        match name.parse::<Role>() {
            Ok(role) if role <= Role::Editor => roles.push(role),
            Ok(role) => p.0.push(format!(
                "auth.self_registration_roles: {role} can never be self-assigned"
            )),
            Err(e) => p.0.push(format!("auth.self_registration_roles: {e}")),
        }
    }
    if roles.is_empty() {
        p.0.push("auth.self_registration_roles: name at least one of user, editor".into());
    }
    let memory = p.check(
        "auth.argon2_memory_kib",
        in_range(a.argon2_memory_kib, 8, 4 * 1024 * 1024),
    );
    let iterations = p.check(
        "auth.argon2_iterations",
        in_range(a.argon2_iterations, 1, 100),
    );
    if a.argon2_memory_kib < 8 * a.argon2_parallelism {
        p.0.push("auth.argon2_memory_kib: Argon2 needs at least 8 KiB per lane (auth.argon2_parallelism)".into());
    }
    let parallelism = p.check(
        "auth.argon2_parallelism",
        in_range(a.argon2_parallelism, 1, 64),
    );
    let concurrency = p.check(
        "auth.hash_concurrency",
        in_range(a.hash_concurrency, 0, 1024),
    );
    let queue = p.check("auth.hash_queue", in_range(a.hash_queue, 0, 100_000));
    let free = p.check(
        "auth.failed_login_free",
        in_range(a.failed_login_free, 1, 100),
    );
    let max_delay = p.check(
        "auth.failed_login_max_delay",
        duration(&a.failed_login_max_delay),
    );
    if let (Some(access), Some(refresh), Some(session)) = (access, refresh, session) {
        if access >= refresh {
            p.0.push("auth.access_token_ttl: must be shorter than auth.refresh_token_ttl".into());
        }
        if refresh > session {
            p.0.push(
                "auth.refresh_token_ttl: must not be longer than auth.session_lifetime".into(),
            );
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let concurrency = usize::try_from(concurrency?).ok()?;
    Some(AuthSettings {
        jwt_secret,
        issuer: issuer?,
        audience: audience?,
        access_token_ttl: access?,
        refresh_token_ttl: refresh?,
        session_lifetime: session?,
        refresh_reuse_grace: grace?,
        leeway: leeway?,
        self_registration_roles: roles,
        password_composition_rules: a.password_composition_rules,
        argon2: Argon2Settings {
            memory_kib: u32::try_from(memory?).ok()?,
            iterations: u32::try_from(iterations?).ok()?,
            parallelism: u32::try_from(parallelism?).ok()?,
        },
        hash_concurrency: if concurrency == 0 { cores } else { concurrency },
        hash_queue: usize::try_from(queue?).ok()?,
        failed_login_free: u32::try_from(free?).ok()?,
        failed_login_max_delay: max_delay?,
    })
}

/// An exact origin: `scheme://host[:port]`, nothing after it.
fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let text = text.trim();
    let bad = |why: &str| Err(format!("{text:?} {why}"));
    let Some((scheme, rest)) = text.split_once("://") else {
        return bad("is not an origin: write scheme://host[:port]");
    };
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return bad("must use http or https");
    }
    if rest.ends_with('/') {
        return bad("has a trailing slash; an origin ends with the host or port");
    }
    if rest.contains(['/', '?', '#']) {
        return bad("has a path, query or fragment; an origin is only scheme://host[:port]");
    }
    if rest.contains('@') {
        return bad("has user information; an origin is only scheme://host[:port]");
    }
    let uri: Uri = match text.parse() {
        Ok(uri) => uri,
        Err(_) => return bad("is malformed"),
    };
    let Some(authority) = uri.authority() else {
        return bad("has no host");
    };
    if authority.host().is_empty() || authority.as_str().ends_with(':') {
        return bad("has no host or an empty port");
    }
    HeaderValue::from_str(&text.to_ascii_lowercase()).or_else(|_| bad("is malformed"))
}

fn cors(raw: &RawSettings, p: &mut Problems) -> Option<CorsSettings> {
    let c = &raw.cors;
    let allowed_origins = if c.allowed_origins.iter().any(|o| o.trim() == "*") {
        if c.allowed_origins.len() > 1 {
            p.0.push("cors.allowed_origins: `*` cannot be mixed with explicit origins".into());
        }
        if c.allow_credentials {
            p.0.push("cors.allowed_origins: `*` together with cors.allow_credentials = true would let any site act with the user's credentials; list the origins".into());
        }
        AllowedOrigins::Any
    } else {
        AllowedOrigins::List(
            c.allowed_origins
                .iter()
                .filter_map(|o| p.check("cors.allowed_origins", parse_origin(o)))
                .collect(),
        )
    };
    let allowed_methods = c
        .allowed_methods
        .iter()
        .filter_map(|m| {
            p.check(
                "cors.allowed_methods",
                Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                    .map_err(|_| format!("{m:?} is not a method")),
            )
        })
        .collect();
    let allowed_headers = c
        .allowed_headers
        .iter()
        .filter_map(|h| {
            p.check(
                "cors.allowed_headers",
                HeaderName::from_bytes(h.trim().as_bytes())
                    .map_err(|_| format!("{h:?} is not a header name")),
            )
        })
        .collect();
    let max_age = p.check("cors.max_age", in_range(c.max_age, 0, 86_400))?;
    Some(CorsSettings {
        allowed_origins,
        allow_credentials: c.allow_credentials,
        allowed_methods,
        allowed_headers,
        max_age: Duration::from_secs(u64::try_from(max_age).ok()?),
    })
}

fn headers(raw: &RawSettings, p: &mut Problems) -> Option<HeaderSettings> {
    let h = &raw.headers;
    let mut hsts = String::new();
    if h.hsts {
        let age = p.check("headers.hsts_max_age", in_range(h.hsts_max_age, 0, 1 << 31))?;
        hsts = format!("max-age={age}");
        if h.hsts_include_subdomains {
            hsts.push_str("; includeSubDomains");
        }
        if h.hsts_preload {
            hsts.push_str("; preload");
        }
    }
    let named = |name: &'static str| HeaderName::from_static(name);
    let mut headers = Vec::new();
    for (name, key, value) in [
        (header::STRICT_TRANSPORT_SECURITY, "headers.hsts", &hsts),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            "headers.content_type_options",
            &h.content_type_options,
        ),
        (
            header::X_FRAME_OPTIONS,
            "headers.frame_options",
            &h.frame_options,
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            "headers.content_security_policy",
            &h.content_security_policy,
        ),
        (
            header::REFERRER_POLICY,
            "headers.referrer_policy",
            &h.referrer_policy,
        ),
        (
            named("permissions-policy"),
            "headers.permissions_policy",
            &h.permissions_policy,
        ),
        (
            named("cross-origin-opener-policy"),
            "headers.cross_origin_opener_policy",
            &h.cross_origin_opener_policy,
        ),
        (
            named("cross-origin-resource-policy"),
            "headers.cross_origin_resource_policy",
            &h.cross_origin_resource_policy,
        ),
        (
            header::X_XSS_PROTECTION,
            "headers.xss_protection",
            &h.xss_protection,
        ),
        (
            header::CACHE_CONTROL,
            "headers.cache_control",
            &h.cache_control,
        ),
    ] {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let parsed = HeaderValue::from_str(value)
            .map_err(|_| format!("{value:?} is not a valid header value"));
        if let Some(v) = p.check(key, parsed) {
            headers.push((name, v));
        }
    }
    Some(HeaderSettings { headers })
}

fn names(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn rate_limit(raw: &RawSettings, p: &mut Problems) -> Option<RateLimitSettings> {
    let r = &raw.rate_limit;
    let mut policies = BTreeMap::new();
    for (name, text) in &r.policies {
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid_name {
            p.0.push(format!(
                "rate_limit.policies: the name {name:?} may use only letters, digits, `_` and `-`"
            ));
        }
        if let Some(spec) = p.check(
            &format!("rate_limit.policies.{name} = {text:?}"),
            text.parse::<Spec>(),
        ) {
            policies.insert(name.clone(), spec);
        }
    }
    let known = |key: &str, list: &[String], p: &mut Problems| {
        for name in list {
            if !r.policies.contains_key(name) {
                p.0.push(format!(
                    "{key}: no policy named {name:?} in rate_limit.policies"
                ));
            }
        }
    };
    let default = names(&r.default);
    known("rate_limit.default", &default, p);
    let mut routes = BTreeMap::new();
    for (route, list) in &r.routes {
        let list = names(list);
        let shape_ok = route.split_once(' ').is_some_and(|(m, path)| {
            Method::from_bytes(m.as_bytes()).is_ok()
                && m == m.to_ascii_uppercase()
                && path.starts_with('/')
        });
        if !shape_ok {
            p.0.push(format!(
                "rate_limit.routes: {route:?} is not `METHOD /path`"
            ));
        }
        known(&format!("rate_limit.routes.{route:?}"), &list, p);
        routes.insert(route.clone(), list);
    }
    let max_keys = p.check("rate_limit.max_keys", in_range(r.max_keys, 1_000, 1 << 32));
    let sweep_interval = p.check("rate_limit.sweep_interval", duration(&r.sweep_interval));
    Some(RateLimitSettings {
        enabled: r.enabled,
        default,
        policies,
        routes,
        max_keys: usize::try_from(max_keys?).ok()?,
        sweep_interval: sweep_interval?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_with_a_path_a_trailing_slash_or_no_scheme_are_refused() {
        for bad in [
            "https://app.example/",
            "https://app.example/path",
            "app.example",
            "ftp://app.example",
            "https://",
            "https://user@app.example",
            "https://app.example:",
            "https://app.example?x=1",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn exact_origins_are_accepted_and_lower_cased() {
        assert_eq!(
            parse_origin("https://App.Example:8443").unwrap(),
            "https://app.example:8443"
        );
        assert_eq!(
            parse_origin("http://[::1]:3000").unwrap(),
            "http://[::1]:3000"
        );
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let mut raw = RawSettings::default();
        raw.server.bind = "nowhere".into();
        raw.server.request_timeout = "soon".into();
        raw.cors.allowed_origins = vec!["*".into()];
        raw.cors.allow_credentials = true;
        raw.rate_limit
            .policies
            .insert("data".into(), "10/fortnight".into());
        let errors = validate(raw).err().unwrap();
        let all = errors.join("\n");
        for needle in [
            "server.bind",
            "server.request_timeout",
            "allow_credentials",
            "rate_limit.policies.data",
        ] {
            assert!(all.contains(needle), "{needle} missing from:\n{all}");
        }
    }

    #[test]
    fn a_route_naming_an_unknown_policy_is_refused() {
        let mut raw = RawSettings::default();
        raw.rate_limit.routes.insert("GET /x".into(), "nope".into());
        let errors = validate(raw).err().unwrap();
        assert!(errors[0].contains("nope"));
    }

    #[test]
    fn the_defaults_are_valid() {
        let s = validate(RawSettings::default()).unwrap();
        assert_eq!(s.server.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(s.server.body_limit, 1 << 20);
        assert!(
            s.headers
                .headers
                .iter()
                .any(|(n, v)| n == "strict-transport-security"
                    && v == "max-age=63072000; includeSubDomains")
        );
    }
}
