//! `palisade check-config`: the effective configuration, redacted, with
//! warnings; non-zero when something would stop `serve`.

use std::process::ExitCode;

use crate::ratelimit::RateLimiter;
use crate::routes;
use crate::settings::Settings;

/// Prints the report and returns the exit code.
pub fn run(settings: &Settings) -> ExitCode {
    if let Err(unknown) = RateLimiter::from_settings(&settings.rate_limit, &routes::route_keys()) {
        eprintln!("palisade: the settings have {} problem(s):", unknown.len());
        for u in unknown {
            eprintln!("  - {u}");
        }
        return ExitCode::from(2);
    }
    println!("# Effective configuration (secrets redacted)");
    print!("{}", settings.to_redacted_toml());
    let warnings = settings.warnings();
    if !warnings.is_empty() {
        eprintln!();
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    eprintln!("configuration OK");
    ExitCode::SUCCESS
}
