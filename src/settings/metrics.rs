//! `[metrics]`: where `/metrics` is served, if anywhere.

use std::net::SocketAddr;

use secrecy::SecretString;

use super::reader::Reader;
use super::setting::Setting;

/// Shortest metrics token accepted, in bytes.
const MIN_TOKEN_BYTES: usize = 32;

/// `[metrics]`. Off when neither is set.
#[derive(Debug, Clone)]
pub struct MetricsSettings {
    /// A listener of its own serving only `/metrics`, without a token.
    pub bind: Option<SocketAddr>,
    /// `/metrics` on the main listener, for `Authorization: Bearer TOKEN`.
    pub token: Option<SecretString>,
}

impl MetricsSettings {
    pub(super) fn read(r: &mut Reader) -> Option<Self> {
        let bind = r
            .parse(
                Setting::unset("metrics.bind", "PALISADE_METRICS_BIND")
                    .note("(unset)")
                    .help("Serve `GET /metrics` (Prometheus text format) on this address of its own, without a token: bind it to a private interface."),
                |text| {
                    text.parse::<SocketAddr>()
                        .map_err(|e| format!("is not HOST:PORT ({e})"))
                },
            );
        let token = r.secret(
            Setting::unset("metrics.token", "PALISADE_METRICS_TOKEN")
                .note("(unset)")
                .help("Serve `GET /metrics` on the main listener to requests with `Authorization: Bearer TOKEN` (compared in constant time; at least 32 bytes)."),
            Setting::unset("metrics.token_file", "PALISADE_METRICS_TOKEN_FILE")
                .help("Read `PALISADE_METRICS_TOKEN` from this file."),
        );
        let token = token.filter(|t| !t.is_empty()).and_then(|t| {
            if t.len() < MIN_TOKEN_BYTES {
                r.problem(
                    "metrics.token",
                    format!("is {} bytes long; at least {MIN_TOKEN_BYTES} are required (`openssl rand -hex 32`)", t.len()),
                );
                None
            } else {
                Some(SecretString::from(t))
            }
        });
        Some(Self { bind, token })
    }

    /// Whether metrics are recorded at all.
    pub fn enabled(&self) -> bool {
        self.bind.is_some() || self.token.is_some()
    }
}
