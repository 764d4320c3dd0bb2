//! `[server]`: where the server listens, its timeouts and body limit, and
//! which proxies it believes about the client address; `[log]`: how it logs.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

use super::reader::Reader;
use super::setting::Setting;

/// `[server]`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub request_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub body_limit: usize,
    pub trusted_proxies: Vec<IpNet>,
    pub forwarded_header: ForwardedHeader,
    pub ipv6_prefix: u8,
    pub docs: bool,
    /// Serve the tutorials' sample endpoints (`GET /api/data`,
    /// `POST /ai/generate`).
    pub sample_routes: bool,
    /// Longest a new connection may take to deliver its first request's
    /// headers.
    pub header_read_timeout: Duration,
    /// Longest a keep-alive connection may sit idle between requests (and
    /// take to deliver the headers of a later one).
    pub keep_alive_timeout: Duration,
    /// Connections served at once; `0` derives it from the file limit.
    pub max_connections: usize,
    /// Native TLS: the certificate chain and private key (PEM files), both
    /// or neither.
    pub tls: Option<TlsFiles>,
    /// How often the TLS files are checked for a change (`0`: only on
    /// SIGHUP).
    pub tls_reload_interval: Duration,
    /// HTTP/2 (over TLS): streams one connection may have open at once.
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2: largest header list a request may send, in bytes.
    pub http2_max_header_list_size: u32,
    /// The address clients reach this API at (`https://auth.example.com`),
    /// for the discovery document; `None`: derived from `bind`.
    pub public_url: Option<String>,
}

/// The PEM files native TLS serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The header trusted proxies put the client chain in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx, HAProxy, most load balancers).
    XForwardedFor,
    /// `Forwarded: for=` (RFC 7239).
    Forwarded,
}

impl ServerSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let settings = Self {
            bind: r.parse(
                Setting::new("server.bind", "PALISADE_BIND", "127.0.0.1:8000")
                    .help("Listen address, `HOST:PORT` (`--bind`)."),
                |text| text.parse().map_err(|e| format!("{e} (write HOST:PORT)")),
            )?,
            data_dir: r.parse(
                Setting::new("server.data_dir", "PALISADE_DATA_DIR", "data")
                    .help("Data folder, relative to the working directory unless absolute (`--data-dir`). Holds the embedded database and the generated signing secret."),
                |text| match text.trim() {
                    "" => Err("must not be empty"),
                    _ => Ok(PathBuf::from(text)),
                },
            )?,
            request_timeout: r.duration(
                Setting::new("server.request_timeout", "PALISADE_REQUEST_TIMEOUT", "30s")
                    .help("Longest time a request may take; past it the answer is 503 with `Retry-After: 1`."),
            )?,
            shutdown_timeout: r.duration(
                Setting::new("server.shutdown_timeout", "PALISADE_SHUTDOWN_TIMEOUT", "10s")
                    .help("How long a graceful shutdown waits for in-flight requests."),
            )?,
            body_limit: r.int(
                Setting::new("server.body_limit", "PALISADE_BODY_LIMIT", "1048576")
                    .range(1, 1 << 30)
                    .help("Largest request body in bytes; above it the answer is 413."),
            )?,
            trusted_proxies: r.list(
                Setting::new("server.trusted_proxies", "PALISADE_TRUSTED_PROXIES", "")
                    .help("Comma-separated networks (CIDR) or addresses whose forwarding header is believed."),
                parse_net,
            ),
            forwarded_header: r.parse(
                Setting::new("server.forwarded_header", "PALISADE_FORWARDED_HEADER", "x-forwarded-for")
                    .help("Which header the trusted proxies write the client chain into: `x-forwarded-for` or `forwarded` (RFC 7239). Only that header is read; the other is ignored."),
                |text| match text.to_ascii_lowercase().as_str() {
                    "x-forwarded-for" => Ok(ForwardedHeader::XForwardedFor),
                    "forwarded" => Ok(ForwardedHeader::Forwarded),
                    other => Err(format!("{other:?}: use x-forwarded-for or forwarded")),
                },
            )?,
            ipv6_prefix: r.int(
                Setting::new("server.ipv6_prefix", "PALISADE_IPV6_PREFIX", "56")
                    .range(16, 128)
                    .help("IPv6 clients are rate limited by this prefix length."),
            )?,
            docs: r.flag(
                Setting::new("server.docs", "PALISADE_DOCS", "true")
                    .help("Serve `/openapi.json` and Swagger UI at `/docs`."),
            )?,
            sample_routes: r.flag(
                Setting::new("server.sample_routes", "PALISADE_SAMPLE_ROUTES", "true")
                    .help("Serve the tutorials' sample endpoints `GET /api/data` and `POST /ai/generate`. Turn them off in gateway mode to forward those paths to your application."),
            )?,
            header_read_timeout: r.duration(
                Setting::new("server.header_read_timeout", "PALISADE_HEADER_READ_TIMEOUT", "10s")
                    .help("Longest a new connection may take to send its first request's headers; past it the connection is closed, so slow or silent clients cannot hold it."),
            )?,
            keep_alive_timeout: r.duration(
                Setting::new("server.keep_alive_timeout", "PALISADE_KEEP_ALIVE_TIMEOUT", "60s")
                    .help("Longest a keep-alive connection may stay idle between requests, and take to send a later request's headers; past it the connection is closed. Keep it above your load balancer's idle timeout."),
            )?,
            max_connections: r.int(
                Setting::new("server.max_connections", "PALISADE_MAX_CONNECTIONS", "0")
                    .range(0, 10_000_000)
                    .note("derived from the file limit")
                    .help("Connections served at once. `0`: the process's open-file limit (raised to its hard limit at start-up) less room for the database pool, Redis and files. A connection over the cap waits up to a second for a free slot, then is closed; connections already open keep being served."),
            )?,
            tls: tls_files(r),
            tls_reload_interval: r.parse(
                Setting::new("server.tls_reload_interval", "PALISADE_TLS_RELOAD_INTERVAL", "60s")
                    .help("How often the TLS certificate and key files are checked for a change; a changed pair is loaded for new connections (open ones keep theirs). `0s`: only on SIGHUP, which always reloads."),
                super::reader::any_duration,
            )?,
            http2_max_concurrent_streams: r.int(
                Setting::new("server.http2_max_concurrent_streams", "PALISADE_HTTP2_MAX_CONCURRENT_STREAMS", "100")
                    .range(1, 10_000)
                    .help("HTTP/2 (with TLS): requests one connection may have in flight at once; more are refused with `REFUSED_STREAM`."),
            )?,
            http2_max_header_list_size: r.int(
                Setting::new("server.http2_max_header_list_size", "PALISADE_HTTP2_MAX_HEADER_LIST_SIZE", "16384")
                    .range(1024, 1 << 20)
                    .help("HTTP/2 (with TLS): largest request header list, in bytes (as HPACK counts it); a larger one is refused with 431."),
            )?,
            public_url: r
                .parse(
                    Setting::unset("server.public_url", "PALISADE_PUBLIC_URL")
                        .note("(unset: from `server.bind`)")
                        .help("The address clients reach this API at (`https://auth.example.com`, behind any proxy): the base of the endpoints in `/.well-known/oauth-authorization-server`, and the default of `auth.issuer`."),
                    public_url,
                )
                .flatten(),
        };
        Some(settings)
    }
}

/// `server.public_url`: an absolute http(s) address without a query or
/// fragment, kept without a trailing `/`; empty means unset.
fn public_url(text: &str) -> Result<Option<String>, &'static str> {
    if text.is_empty() {
        return Ok(None);
    }
    let t = text.trim_end_matches('/');
    let ok = (t.starts_with("https://") || t.starts_with("http://"))
        && t.len() > "https://".len()
        && !t.contains(['#', '?', ' ', '\n', '\r', '\\']);
    if ok {
        Ok(Some(t.to_owned()))
    } else {
        Err("must be an http:// or https:// address without a query or fragment")
    }
}

/// `server.tls_cert` and `server.tls_key`: both, or neither.
fn tls_files(r: &mut Reader) -> Option<TlsFiles> {
    let path = |r: &mut Reader, s: Setting| {
        r.parse(s, |text| Ok::<_, String>(PathBuf::from(text)))
            .filter(|p| !p.as_os_str().is_empty())
    };
    let cert = path(
        r,
        Setting::unset("server.tls_cert", "PALISADE_TLS_CERT")
            .note("(unset: plain HTTP)")
            .help("PEM file with the certificate chain to serve HTTPS with (leaf first), natively: TLS 1.3 and 1.2, HTTP/2 and HTTP/1.1 by ALPN. Needs `server.tls_key`. Read at start-up (a bad pair stops it), on SIGHUP and when it changes."),
    );
    let key = path(
        r,
        Setting::unset("server.tls_key", "PALISADE_TLS_KEY")
            .help("PEM file with the certificate's private key (PKCS#8, PKCS#1 or SEC1). Keep it owner-only."),
    );
    match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => {
            r.problem(
                "server.tls_key",
                "server.tls_cert is set: set the private key too",
            );
            None
        }
        (None, Some(_)) => {
            r.problem(
                "server.tls_cert",
                "server.tls_key is set: set the certificate too",
            );
            None
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// `[log]`.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

impl LogSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        Some(Self {
            format: r.parse(
                Setting::new("log.format", "PALISADE_LOG_FORMAT", "human")
                    .help("`human` or `json`."),
                |text| match text.to_ascii_lowercase().as_str() {
                    "human" | "text" | "pretty" => Ok(LogFormat::Human),
                    "json" => Ok(LogFormat::Json),
                    other => Err(format!("{other:?}: use `human` or `json`")),
                },
            )?,
            level: r.parse(
                Setting::new("log.level", "PALISADE_LOG_LEVEL", "info")
                    .help("A tracing filter, e.g. `info` or `palisade=debug,tower_http=info`."),
                |text| {
                    let filter = tracing_subscriber::EnvFilter::builder().parse(text);
                    filter.map(|_| text.to_owned())
                },
            )?,
        })
    }
}

/// A CIDR network, or a bare address meaning just that host.
fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not an address or a CIDR network"))
}
