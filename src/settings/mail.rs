//! `[mail]`: where account mail goes (SMTP, or `.eml` files in the data
//! folder's outbox when no server is configured), who it is from, the
//! public address its links point at, and the delivery queue.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::reader::Reader;
use super::setting::Setting;

/// How mail reaches the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// `smtp://`: plain TCP, then STARTTLS, required (no fallback).
    StartTls,
    /// `smtps://`: TLS from the first byte (RFC 8314).
    Implicit,
    /// `smtp://...?tls=none`: no TLS at all (a relay on the same host).
    None,
}

/// An SMTP server. Its `Debug` never shows the credentials.
#[derive(Clone)]
pub struct SmtpServer {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<SecretString>,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `[mail]`.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `None`: mail is written to `DATA_DIR/outbox/`.
    pub smtp: Option<SmtpServer>,
    /// CA certificates (PEM) trusted for the SMTP server besides the
    /// Mozilla roots.
    pub smtp_ca_file: Option<PathBuf>,
    /// The `From:` mailbox.
    pub from: String,
    /// Where links in mail point: the application's public address.
    pub public_base_url: String,
    /// Mails that may wait for delivery; past it new ones are dropped
    /// (logged and counted).
    pub queue_capacity: usize,
    /// Delivery attempts per mail before it is given up.
    pub max_attempts: u32,
    /// Longest one SMTP delivery may take.
    pub timeout: Duration,
}

impl MailSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let url = r.secret(
            Setting::unset("mail.smtp_url", "PALISADE_SMTP_URL")
                .note("(unset: mail is written to DATA_DIR/outbox/)")
                .help("The SMTP server: `smtp://[USER:PASSWORD@]HOST[:PORT]` (STARTTLS required; port 587), `smtps://...` (TLS from the start; port 465), or `smtp://HOST:PORT?tls=none` for a relay on the same host only (check-config warns otherwise)."),
            Setting::unset("mail.smtp_url_file", "PALISADE_SMTP_URL_FILE")
                .help("Read `PALISADE_SMTP_URL` from this file."),
        )
        .filter(|u| !u.trim().is_empty());
        let username = r
            .text(
                Setting::unset("mail.smtp_username", "PALISADE_SMTP_USERNAME")
                    .help("SMTP user name (instead of one in the URL)."),
            )
            .filter(|u| !u.is_empty());
        let password = r.secret(
            Setting::unset("mail.smtp_password", "PALISADE_SMTP_PASSWORD")
                .help("SMTP password (instead of one in the URL)."),
            Setting::unset("mail.smtp_password_file", "PALISADE_SMTP_PASSWORD_FILE")
                .help("Read the SMTP password from this file."),
        );
        let smtp = url.and_then(|url| {
            let parsed = parse_url(&url);
            let mut server = r.check("mail.smtp_url (PALISADE_SMTP_URL)", parsed)?;
            if username.is_some() {
                server.username.clone_from(&username);
            }
            if let Some(password) = password {
                server.password = Some(SecretString::from(password));
            }
            if server.username.is_some() != server.password.is_some() {
                r.problem(
                    "mail.smtp_username",
                    "an SMTP user name needs a password and a password a user name",
                );
            }
            Some(server)
        });
        let from = r.parse(
            Setting::new(
                "mail.from",
                "PALISADE_MAIL_FROM",
                "Palisade <palisade@localhost>",
            )
            .help("The `From:` of every mail: `address` or `Name <address>`."),
            |text| {
                text.parse::<lettre::message::Mailbox>()
                    .map(|_| text.to_owned())
                    .map_err(|e| format!("is not a mailbox: {e}"))
            },
        )?;
        let public_base_url = r.parse(
            Setting::new("mail.public_base_url", "PALISADE_PUBLIC_BASE_URL", "http://localhost:8000")
                .help("The public address of the application the links in mail open (`https://app.example.org`): verification links go to `<this>/verify-email#token=...`, reset links to `<this>/reset-password#token=...`; the page posts the token to the API."),
            |text| {
                let t = text.trim_end_matches('/');
                let ok = (t.starts_with("https://") || t.starts_with("http://"))
                    && t.len() > "https://".len()
                    && !t.contains(['#', '?', ' ', '\n', '\r']);
                if ok {
                    Ok(t.to_owned())
                } else {
                    Err("must be an http:// or https:// address without a query or fragment")
                }
            },
        )?;
        Some(Self {
            smtp,
            smtp_ca_file: r
                .parse(
                    Setting::unset("mail.smtp_ca_file", "PALISADE_SMTP_CA_FILE")
                        .help("PEM file of CA certificates to trust for the SMTP server besides the Mozilla roots (a private CA). Read at start-up."),
                    |text| Ok::<_, String>(PathBuf::from(text)),
                )
                .filter(|p| !p.as_os_str().is_empty()),
            from,
            public_base_url,
            queue_capacity: r.int(
                Setting::new("mail.queue_capacity", "PALISADE_MAIL_QUEUE_CAPACITY", "1000")
                    .range(1, 1_000_000)
                    .help("Mails that may wait for delivery; past it a new mail is dropped, logged and counted (the request that caused it answers as usual)."),
            )?,
            max_attempts: r.int(
                Setting::new("mail.max_attempts", "PALISADE_MAIL_MAX_ATTEMPTS", "5")
                    .range(1, 100)
                    .help("Delivery attempts per mail (waits of 1, 2, 4, ... s between them, at most 5 min); a mail that still fails is logged and counted."),
            )?,
            timeout: r.duration(
                Setting::new("mail.timeout", "PALISADE_MAIL_TIMEOUT", "10s")
                    .help("Longest one SMTP delivery attempt may take."),
            )?,
        })
    }
}

/// Reads `smtp://` / `smtps://` URLs. The error never repeats the URL
/// (it may hold a password).
fn parse_url(text: &str) -> Result<SmtpServer, String> {
    let url = url::Url::parse(text.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    let mut security = match url.scheme() {
        "smtp" => SmtpSecurity::StartTls,
        "smtps" => SmtpSecurity::Implicit,
        other => return Err(format!("scheme {other:?}: use smtp:// or smtps://")),
    };
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "none") if security == SmtpSecurity::StartTls => security = SmtpSecurity::None,
            ("tls", "required") if security == SmtpSecurity::StartTls => {}
            _ => {
                return Err(format!(
                    "unknown parameter {key:?} (only tls=none on smtp://)"
                ));
            }
        }
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("names no host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port().unwrap_or(match security {
        SmtpSecurity::Implicit => 465,
        _ => 587,
    });
    let decode = |s: &str| {
        percent_decode(s).ok_or_else(|| "has a user name or password that is not UTF-8".to_owned())
    };
    let username = match url.username() {
        "" => None,
        u => Some(decode(u)?),
    };
    let password = url.password().map(decode).transpose()?;
    Ok(SmtpServer {
        host,
        port,
        security,
        username,
        password: password.map(SecretString::from),
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes: Vec<u8> = form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())?;
    String::from_utf8(bytes).ok()
}

impl SmtpServer {
    /// Whether the host is this machine (where `tls=none` is reasonable).
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The password, for the SMTP client only.
    pub fn expose_password(&self) -> Option<&str> {
        self.password.as_ref().map(ExposeSecret::expose_secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_are_read_with_their_security_and_credentials() {
        let s = parse_url("smtp://mailer:p%40ss@mail.example.org").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("mail.example.org", 587));
        assert_eq!(s.security, SmtpSecurity::StartTls);
        assert_eq!(s.username.as_deref(), Some("mailer"));
        assert_eq!(s.expose_password(), Some("p@ss"));
        assert!(!format!("{s:?}").contains("p@ss"));
        let s = parse_url("smtps://mail.example.org").unwrap();
        assert_eq!((s.port, s.security), (465, SmtpSecurity::Implicit));
        let s = parse_url("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((s.port, s.security), (2525, SmtpSecurity::None));
        assert!(s.is_loopback());
    }

    #[test]
    fn other_schemes_and_parameters_are_refused_without_repeating_the_url() {
        for bad in [
            "http://mail.example.org",
            "smtps://h?tls=none",
            "smtp://h?foo=bar",
            "smtp://:secretpw@/",
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(!err.contains("secretpw"), "{err}");
        }
    }
}
