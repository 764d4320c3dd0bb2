//! Settings that are allowed but deserve an operator's second look; `serve`
//! logs them and `check-config` prints them.

use http::header::STRICT_TRANSPORT_SECURITY;

use super::{AllowedOrigins, Settings, secret};

impl Settings {
    /// Things that are allowed but deserve an operator's second look.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.cors.allowed_origins == AllowedOrigins::List(Vec::new()) {
            out.push(
                "cors.allowed_origins is empty: no browser page on another origin can call the API"
                    .into(),
            );
        }
        if self.cors.allowed_origins == AllowedOrigins::Any {
            out.push("cors.allowed_origins is `*`: any web page may call the API".into());
        }
        let headers = &self.headers.headers;
        if !headers
            .iter()
            .any(|(name, _)| name == STRICT_TRANSPORT_SECURITY)
        {
            out.push("headers.hsts is off: browsers will not be told to insist on HTTPS".into());
        }
        if self.auth.jwt_algorithm.is_asymmetric() && !self.auth.issuer.starts_with("https://") {
            out.push(format!(
                "auth.issuer is {:?}: services verifying tokens through /.well-known/oauth-authorization-server expect an https URL there (set server.public_url)",
                self.auth.issuer
            ));
        }
        if self.auth.jwt_algorithm.is_asymmetric()
            && self.auth.signing_key_publish_delay
                < self.auth.key_set_refresh + std::time::Duration::from_secs(300)
        {
            out.push("auth.signing_key_publish_delay is shorter than auth.key_set_refresh plus the JWKS's 5-minute cache: after `palisade keys rotate`, a new key may sign before every instance or verifier knows it".into());
        }
        if self.gateway.enabled() && self.gateway.read_timeout >= self.server.request_timeout {
            out.push("gateway.read_timeout is not shorter than server.request_timeout: a slow upstream gets the generic 503 timeout instead of 504".into());
        }
        if let Some(upstream) = &self.gateway.upstream
            && upstream.scheme() == "http"
            && !is_loopback(upstream)
        {
            out.push(format!(
                "gateway.upstream {upstream} is plain http to another host: identities and bodies cross the network unencrypted (use https, or keep the upstream on a private network)"
            ));
        }
        if self.server.docs {
            out.push(
                "server.docs is on: /docs and /openapi.json describe the API to anyone".into(),
            );
        }
        let level = self.log.level.to_ascii_lowercase();
        if level.contains("debug") || level.contains("trace") {
            out.push(format!(
                "log.level is {:?}: verbose logs may hold personal data",
                self.log.level
            ));
        }
        if !self.rate_limit.enabled {
            out.push("rate_limit.enabled is false: nothing limits brute force or floods".into());
        }
        if self.server.bind.ip().is_unspecified()
            && self.server.trusted_proxies.is_empty()
            && self.server.tls.is_none()
        {
            out.push("listening on all interfaces with no trusted proxies: make sure TLS terminates in front".into());
        }
        let a = self.auth.argon2;
        if a.memory_kib < 19_456 || a.iterations < 2 {
            out.push(format!(
                "auth.argon2_* (m={} KiB, t={}) is below OWASP's m=19456 KiB, t=2",
                a.memory_kib, a.iterations
            ));
        }
        if self.auth.password_composition_rules {
            out.push("auth.password_composition_rules is on: NIST SP 800-63B and ASVS 5.0 advise against composition rules".into());
        }
        if self.auth.jwt_secret.is_none() {
            out.push(format!(
                "no signing secret configured: one is generated once into {}",
                secret::secret_path(&self.server.data_dir).display()
            ));
        }
        if self.auth.mfa_key.is_none() {
            out.push(format!(
                "no MFA key configured: one is generated once into {}; back it up with the database (without it no second factor can be read)",
                self.server.data_dir.join(secret::MFA_KEY_FILE).display()
            ));
        }
        out.extend(self.mail_warnings());
        if let Some(addr) = self.metrics.bind
            && !addr.ip().is_loopback()
        {
            out.push(format!(
                "metrics.bind is {addr}: /metrics answers there without a token; keep that address private"
            ));
        }
        if let Some(tls) = &self.server.tls
            && let Some(mode) = others_may_read(&tls.key)
        {
            out.push(format!(
                "server.tls_key {} is readable by other users (mode {mode:o}): chmod 600 it",
                tls.key.display()
            ));
        }
        out
    }
}

impl Settings {
    fn mail_warnings(&self) -> Vec<String> {
        let mail = &self.mail;
        let mut out = Vec::new();
        match &mail.smtp {
            None => out.push(format!(
                "no SMTP server configured (mail.smtp_url): account mail is written to {} instead of sent",
                self.server.data_dir.join("outbox").display()
            )),
            Some(smtp) => {
                if smtp.security == super::SmtpSecurity::None && !smtp.is_loopback() {
                    out.push(format!(
                        "mail.smtp_url has tls=none for {}, not this machine: reset links and credentials cross the network in the clear",
                        smtp.host
                    ));
                }
                if mail.public_base_url == "http://localhost:8000" {
                    out.push("mail.public_base_url is the default http://localhost:8000: links in mail will not reach your users".into());
                }
            }
        }
        let local = ["http://localhost", "http://127.0.0.1", "http://[::1]"];
        if mail.public_base_url.starts_with("http://")
            && !local.iter().any(|l| mail.public_base_url.starts_with(l))
        {
            out.push("mail.public_base_url is http://: one-time tokens in mailed links would travel unencrypted".into());
        }
        out
    }
}

/// The permission bits of `path` when its group or others may read it.
#[cfg(unix)]
fn others_may_read(path: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o044 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn others_may_read(_: &std::path::Path) -> Option<u32> {
    None
}

#[cfg(test)]
mod mail_tests {
    use super::super::tests::env;
    use super::*;

    #[test]
    fn risky_mail_settings_are_warned_about() {
        let warnings = |pairs: &[(&str, &str)]| Settings::load(&env(pairs)).unwrap().warnings();
        let has = |w: &[String], needle: &str| w.iter().any(|w| w.contains(needle));
        let outbox = warnings(&[]);
        assert!(has(&outbox, "written to"), "{outbox:?}");
        let remote_plain =
            warnings(&[("PALISADE_SMTP_URL", "smtp://mail.example.org:25?tls=none")]);
        assert!(has(&remote_plain, "tls=none"), "{remote_plain:?}");
        assert!(
            has(&remote_plain, "public_base_url is the default"),
            "{remote_plain:?}"
        );
        let fine = warnings(&[
            ("PALISADE_SMTP_URL", "smtp://127.0.0.1:25?tls=none"),
            ("PALISADE_PUBLIC_BASE_URL", "https://app.example.org"),
        ]);
        assert!(
            !has(&fine, "tls=none") && !has(&fine, "public_base_url"),
            "{fine:?}"
        );
        let http = warnings(&[("PALISADE_PUBLIC_BASE_URL", "http://app.example.org")]);
        assert!(has(&http, "unencrypted"), "{http:?}");
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::super::tests::env;
    use super::*;

    #[test]
    fn a_tls_key_others_can_read_is_warned_about_and_tls_silences_the_bind_warning() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, "c").unwrap();
        std::fs::write(&key, "k").unwrap();
        let (c, k) = (cert.display().to_string(), key.display().to_string());
        let load = |tls: bool| {
            let mut pairs = vec![("PALISADE_BIND", "0.0.0.0:8443")];
            if tls {
                pairs.extend([
                    ("PALISADE_TLS_CERT", c.as_str()),
                    ("PALISADE_TLS_KEY", k.as_str()),
                ]);
            }
            Settings::load(&env(&pairs)).unwrap().warnings()
        };
        let about_key = |w: &[String]| w.iter().any(|w| w.contains("server.tls_key"));
        let about_bind = |w: &[String]| w.iter().any(|w| w.contains("all interfaces"));

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warned = load(true);
        assert!(about_key(&warned), "{warned:?}");
        assert!(warned.iter().any(|w| w.contains("mode 644")), "{warned:?}");
        assert!(!about_bind(&warned), "{warned:?}");

        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(!about_key(&load(true)));
        assert!(about_bind(&load(false)));
    }
}

/// Whether `url`'s host is this machine.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
