//! The headers of a forwarded request and of the upstream's answer, and
//! the paths the gateway refuses to forward.
//!
//! Requests: hop-by-hop headers (RFC 9110 §7.6.1, and any named in
//! `Connection`) are removed, except the `Upgrade` handshake on a
//! WebSocket route; so are the client's `Forwarded`, every
//! `X-Forwarded-*`, `X-Real-IP`, `X-Original-URL` and `X-Rewrite-URL`
//! (Palisade sets `X-Forwarded-For`, `-Proto` and `-Host` from what it
//! trusts itself), and `Authorization` unless
//! `gateway.forward_authorization` is on. `X-Request-Id` carries
//! Palisade's request id.
//!
//! Answers: hop-by-hop headers, `Server` and `X-Powered-By` are removed,
//! and so is any `Access-Control-*` header: CORS is Palisade's allowlist,
//! an upstream cannot widen it.

use std::net::IpAddr;

use http::{HeaderMap, HeaderName, HeaderValue, header};

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Headers that describe one connection, not the message (RFC 9110
/// §7.6.1, and the older `Keep-Alive` and `Proxy-Connection`).
fn hop_by_hop() -> [&'static HeaderName; 9] {
    [
        &header::CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &header::PROXY_AUTHENTICATE,
        &header::PROXY_AUTHORIZATION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
    ]
}

/// Removes the hop-by-hop headers, those `Connection` names included.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(hop_by_hop()) {
        headers.remove(name);
    }
}

/// Removes every header whose (lower-case) name starts with `prefix`.
pub fn remove_prefixed(headers: &mut HeaderMap, prefix: &str) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with(prefix))
        .cloned()
        .collect();
    for name in names {
        headers.remove(&name);
    }
}

/// Whether the request asks to switch to WebSocket (RFC 6455 §4.1).
pub fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    let has_token = |name: &HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has_token(&header::CONNECTION, "upgrade") && has_token(&header::UPGRADE, "websocket")
}

/// What Palisade itself knows of the client, for the `X-Forwarded-*`
/// headers.
#[derive(Debug, Clone)]
pub struct Origin<'a> {
    pub client: Option<IpAddr>,
    /// `https` or `http`.
    pub proto: &'static str,
    pub host: Option<&'a HeaderValue>,
    /// Palisade's request id, set again after the hop-by-hop removal (a
    /// client's `Connection: x-request-id` would remove it).
    pub request_id: Option<&'a HeaderValue>,
}

/// Rewrites a request's headers for the upstream.
pub fn request(
    headers: &mut HeaderMap,
    origin: &Origin<'_>,
    websocket: bool,
    forward_authorization: bool,
) {
    remove_hop_by_hop(headers);
    if websocket {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    }
    // Every header a proxy is trusted to set: `Forwarded`, all of
    // `X-Forwarded-*` (`-User`, `-Email`, `-Prefix`... are trusted by some
    // applications), `X-Real-IP`, and the path overrides some frameworks
    // honour (`X-Original-URL`, `X-Rewrite-URL`).
    remove_prefixed(headers, "x-forwarded-");
    for name in ["forwarded", "x-real-ip", "x-original-url", "x-rewrite-url"] {
        headers.remove(name);
    }
    // HTTP/2 clients may split cookies over many fields; an HTTP/1.1
    // request carries them in one, joined by "; " (RFC 9113 §8.2.3).
    if headers.get_all(header::COOKIE).iter().nth(1).is_some() {
        let joined: Vec<&[u8]> = headers
            .get_all(header::COOKIE)
            .iter()
            .map(HeaderValue::as_bytes)
            .collect();
        if let Ok(value) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
            headers.insert(header::COOKIE, value);
        }
    }
    if let Some(id) = origin.request_id {
        headers.insert(crate::http::request_id::X_REQUEST_ID.clone(), id.clone());
    }
    if !forward_authorization {
        headers.remove(header::AUTHORIZATION);
    }
    if let Some(ip) = origin.client
        && let Ok(value) = HeaderValue::from_str(&ip.to_string())
    {
        headers.insert(X_FORWARDED_FOR.clone(), value);
    }
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(origin.proto),
    );
    if let Some(host) = origin.host {
        headers.insert(X_FORWARDED_HOST.clone(), host.clone());
    }
}

/// Rewrites the upstream's answer headers for the client. A `101` keeps
/// its `Connection` and `Upgrade`.
pub fn response(headers: &mut HeaderMap, switching: bool) {
    let upgrade = switching.then(|| {
        (
            headers.get(header::CONNECTION).cloned(),
            headers.get(header::UPGRADE).cloned(),
        )
    });
    remove_hop_by_hop(headers);
    headers.remove(header::SERVER);
    headers.remove("x-powered-by");
    remove_prefixed(headers, "access-control-");
    if let Some((connection, upgrade)) = upgrade {
        if let Some(v) = connection {
            headers.insert(header::CONNECTION, v);
        }
        if let Some(v) = upgrade {
            headers.insert(header::UPGRADE, v);
        }
    }
}

/// Why a path is not forwarded. The route table matches the path's
/// bytes; an application may first decode, resolve or re-read it, and a
/// path that means one thing to the table and another to the application
/// (`/public/%2e%2e/admin`, `/public/..;/admin`, `/%61dmin`) would pass
/// one route's rules to reach another's. Refused: a path not starting
/// with `/`; `.` and `..` segments, also before a `;` (Tomcat, Spring);
/// empty segments; backslashes; any percent-escape of a character that
/// needs none (letters, digits, `-._~`), of `/`, `\`, `%` or NUL, IIS's
/// `%u`, and a malformed escape.
pub fn unsafe_path(path: &str) -> Option<&'static str> {
    if !path.starts_with('/') {
        return Some("no leading `/`");
    }
    if path.contains('\\') {
        return Some("a backslash");
    }
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
            let (Some(hi), Some(lo)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
                return Some("a malformed or `%u` percent-escape");
            };
            let decoded = (hi * 16 + lo) as u8;
            if decoded.is_ascii_alphanumeric()
                || matches!(decoded, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | b'%' | 0)
            {
                return Some(
                    "a percent-escape of a character that needs none, or of `/`, `\\`, `%` or NUL",
                );
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    if path.len() > 1
        && path[1..].split('/').any(|s| {
            let s = s.split(';').next().unwrap_or(s);
            s == "." || s == ".."
        })
    {
        return Some("a `.` or `..` segment");
    }
    if path.contains("//") {
        return Some("an empty segment (`//`)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_could_change_meaning_upstream_are_refused() {
        for bad in [
            "/public/../admin",
            "/public/./x",
            "/public/..",
            "/public/%2e%2e/admin",
            "/public/%2E./admin",
            "/public/..%2fadmin",
            "/public/x%2Fy",
            "/public/..;/admin",
            "/public/.;x/y",
            "/%61dmin/users",
            "/public/%41",
            "/public/%252e",
            "/public/%u002e",
            "/public/%zz",
            "/public/%2",
            "example.com",
            "",
            "/public\\..\\admin",
            "//admin",
            "/public//x",
            "/a%00b",
        ] {
            assert!(unsafe_path(bad).is_some(), "{bad}");
        }
        for good in [
            "/",
            "/public/x",
            "/a.b/c..d/.e",
            "/x%20y",
            "/app/",
            "/a;b=c/d",
            "/caf%C3%A9",
        ] {
            assert_eq!(unsafe_path(good), None, "{good}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::ACCEPT));
    }
}
