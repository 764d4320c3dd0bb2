//! The `palisade` binary: parses the command line, loads the settings,
//! starts telemetry and runs the chosen command.

use std::process::ExitCode;

use clap::Parser;
use palisade::admin_cli::PasswordSource;
use palisade::cli::{Cli, Command};
use palisade::settings::{LogFormat, LogSettings, Settings};
use palisade::startup::Application;

/// jemalloc, which returns freed memory to the system within about a
/// second (the `jemalloc` feature, on by default; its settings are in
/// `.cargo/config.toml`; see docs/benchmarks.md for why).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.sources()) {
        Ok(settings) => settings,
        Err(problems) => {
            eprintln!(
                "palisade: refusing to start; the settings have {} problem(s):",
                problems.len()
            );
            for problem in problems {
                eprintln!("  - {problem}");
            }
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig = cli.command {
        return palisade::check_config::run(&settings);
    }
    // The server logs as configured; the operator commands log warnings
    // and Palisade's own notices (e.g. that a signing secret was made).
    let log = match cli.command {
        Command::Serve { .. } => settings.log.clone(),
        _ => LogSettings {
            format: LogFormat::Human,
            level: "warn,palisade=info".into(),
        },
    };
    palisade::telemetry::init(&log);
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(cli.command, settings)),
        Err(e) => {
            eprintln!("palisade: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> ExitCode {
    match command {
        Command::CheckConfig => palisade::check_config::run(&settings),
        Command::Serve { .. } => serve(settings).await,
        Command::Migrate => palisade::admin_cli::migrate(settings).await,
        Command::Prune { dry_run } => palisade::admin_cli::prune(settings, dry_run).await,
        Command::Backup { file } => palisade::admin_cli::backup(settings, &file).await,
        Command::ImportUsers { file, atomic } => {
            palisade::admin_cli::import_users(settings, &file, atomic).await
        }
        Command::Keys(command) => palisade::admin_cli::keys(settings, command).await,
        Command::Users(command) => palisade::admin_cli::users(settings, command).await,
        Command::CreateAdmin {
            email,
            username,
            name,
            password_stdin,
        } => {
            let source = if password_stdin {
                PasswordSource::Stdin
            } else {
                PasswordSource::Prompt
            };
            palisade::admin_cli::create_admin(settings, &email, &username, name.as_deref(), source)
                .await
        }
    }
}

async fn serve(settings: Settings) -> ExitCode {
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            eprintln!("palisade: cannot start: {e:#}");
            return ExitCode::from(2);
        }
    };
    let addr = app.local_addr();
    let run = match app.run_until_stopped() {
        Ok(run) => run,
        Err(e) => {
            tracing::error!("cannot install the signal handlers: {e}");
            eprintln!("palisade: cannot install the signal handlers: {e}");
            return ExitCode::from(2);
        }
    };
    match addr {
        Ok(addr) => tracing::info!(%addr, "listening"),
        Err(e) => tracing::warn!("cannot read the listen address: {e}"),
    }
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}
