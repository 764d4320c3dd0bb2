//! Logging and metrics. Logging: human-readable or JSON lines on standard error, filtered by
//! `log.level`. Request spans carry the request id; headers are never
//! logged (and `Authorization`, `Proxy-Authorization`, `Cookie`,
//! `Set-Cookie` are marked sensitive in case anything tries).

pub mod prom;

use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber. Calling it again does nothing.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match settings.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Human => builder.try_init(),
    };
}
