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
        if self.server.bind.ip().is_unspecified() && self.server.trusted_proxies.is_empty() {
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
        out
    }
}
