//! `[cors]`: which browser origins may call the API, and how. A wildcard
//! with credentials, or an origin that is not exactly `scheme://host[:port]`,
//! is refused.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method, Uri};

use super::reader::Reader;
use super::setting::Setting;

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// `*`: any origin, never together with credentials.
    Any,
    /// Exact, lower-cased `scheme://host[:port]` origins.
    List(Vec<HeaderValue>),
}

/// `[cors]`.
#[derive(Debug, Clone)]
pub struct CorsSettings {
    pub allowed_origins: AllowedOrigins,
    pub allow_credentials: bool,
    pub allowed_methods: Vec<Method>,
    pub allowed_headers: Vec<HeaderName>,
    pub max_age: Duration,
}

impl CorsSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let origins = r.strings(
            Setting::new("cors.allowed_origins", "PALISADE_CORS_ALLOWED_ORIGINS", "")
                .note("no cross-origin access")
                .help("Comma-separated exact origins, `scheme://host[:port]`, or `*` alone."),
        );
        let allow_credentials = r.flag(
            Setting::new(
                "cors.allow_credentials",
                "PALISADE_CORS_ALLOW_CREDENTIALS",
                "false",
            )
            .help("Send `Access-Control-Allow-Credentials: true`. Refused together with `*`."),
        )?;
        let allowed_origins = if origins.iter().any(|o| o.trim() == "*") {
            if origins.len() > 1 {
                r.problem(
                    "cors.allowed_origins",
                    "`*` cannot be mixed with explicit origins",
                );
            }
            if allow_credentials {
                r.problem("cors.allowed_origins", "`*` together with cors.allow_credentials = true would let any site act with the user's credentials; list the origins");
            }
            AllowedOrigins::Any
        } else {
            let parsed = origins.iter().map(|o| parse_origin(o));
            AllowedOrigins::List(
                parsed
                    .filter_map(|o| r.check("cors.allowed_origins", o))
                    .collect(),
            )
        };
        Some(Self {
            allowed_origins,
            allow_credentials,
            allowed_methods: r.list(
                Setting::new(
                    "cors.allowed_methods",
                    "PALISADE_CORS_ALLOWED_METHODS",
                    "GET,POST,PUT,PATCH,DELETE",
                )
                .help("Methods allowed cross-origin."),
                |m| {
                    Method::from_bytes(m.trim().to_ascii_uppercase().as_bytes())
                        .map_err(|_| format!("{m:?} is not a method"))
                },
            ),
            allowed_headers: r.list(
                Setting::new(
                    "cors.allowed_headers",
                    "PALISADE_CORS_ALLOWED_HEADERS",
                    "authorization,content-type",
                )
                .help("Request headers allowed cross-origin."),
                |h| {
                    HeaderName::from_bytes(h.trim().as_bytes())
                        .map_err(|_| format!("{h:?} is not a header name"))
                },
            ),
            max_age: r
                .int(
                    Setting::new("cors.max_age", "PALISADE_CORS_MAX_AGE", "3600")
                        .range(0, 86_400)
                        .help("Seconds a browser may cache a preflight answer."),
                )
                .map(Duration::from_secs)?,
        })
    }
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
}
