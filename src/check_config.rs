//! `palisade check-config`: the effective configuration, redacted, with
//! warnings; non-zero when something would stop `serve`.

use std::process::ExitCode;

use crate::ratelimit::RateLimiter;
use crate::routes;
use crate::settings::{RoutePattern, Settings};

/// Prints the report and returns the exit code.
pub fn run(settings: &Settings) -> ExitCode {
    let conflicts = routes::table::gateway_conflicts(settings);
    let mut problems = conflicts.unreachable;
    if let Err(unknown) = RateLimiter::from_settings(
        &settings.rate_limit,
        &settings.gateway,
        &routes::route_keys(),
    ) {
        problems.extend(unknown.iter().map(ToString::to_string));
    }
    if !problems.is_empty() {
        eprintln!("palisade: the settings have {} problem(s):", problems.len());
        for p in problems {
            eprintln!("  - {p}");
        }
        return ExitCode::from(2);
    }
    println!("# Effective configuration (secrets redacted)");
    print!("{}", settings.to_redacted_toml());
    print_gateway_table(settings);
    let mut warnings = settings.warnings();
    warnings.extend(conflicts.covering);
    if !warnings.is_empty() {
        eprintln!();
        for w in &warnings {
            eprintln!("warning: {w}");
        }
    }
    eprintln!("configuration OK");
    ExitCode::SUCCESS
}

/// The gateway's route table, one line per pattern, longest first (the
/// order a path is matched in after the exact patterns).
fn print_gateway_table(settings: &Settings) {
    let gateway = &settings.gateway;
    let Some(upstream) = &gateway.upstream else {
        return;
    };
    println!(
        "\n# Gateway: {upstream}; paths matched exact first, then by the longest prefix; any other path is 404"
    );
    let mut routes: Vec<_> = gateway.routes.iter().collect();
    routes.sort_by_key(|r| {
        (
            matches!(r.pattern, RoutePattern::Prefix(_)),
            std::cmp::Reverse(r.pattern.as_str().len()),
        )
    });
    for r in routes {
        let limit = if r.limit.is_empty() {
            format!("{} (default)", settings.rate_limit.default.join(","))
        } else {
            r.limit.join(",")
        };
        println!(
            "#   {:<24} auth={:<8} role={:<11} scope={:<12} limit={} websocket={}",
            r.pattern.to_text(),
            r.auth.as_str(),
            r.role.map_or("-", |x| x.as_str()),
            r.scope.map_or("-", |x| x.as_str()),
            limit,
            r.websocket,
        );
    }
}
