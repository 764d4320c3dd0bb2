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
