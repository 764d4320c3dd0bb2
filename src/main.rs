//! The `palisade` binary: parses the command line, loads the settings,
//! starts telemetry and runs the chosen command.

use std::process::ExitCode;

use clap::Parser;
use palisade::admin_cli::PasswordSource;
use palisade::cli::{Cli, Command};
use palisade::settings::Settings;
use palisade::startup::Application;

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
    match cli.command {
        Command::CheckConfig => palisade::check_config::run(&settings),
        Command::Serve { .. } => serve(settings),
        Command::Migrate => block_on(palisade::admin_cli::migrate(settings)),
        Command::Users(command) => block_on(palisade::admin_cli::users(settings, command)),
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
            block_on(palisade::admin_cli::create_admin(
                settings,
                &email,
                &username,
                name.as_deref(),
                source,
            ))
        }
    }
}

fn block_on(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    // Operator commands log too (e.g. that a signing secret was generated).
    palisade::telemetry::init(&palisade::settings::LogSettings {
        format: palisade::settings::LogFormat::Human,
        level: "warn,palisade=info".into(),
    });
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => {
            eprintln!("palisade: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> ExitCode {
    palisade::telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("palisade: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                tracing::error!("cannot start: {e:#}");
                eprintln!("palisade: cannot start: {e:#}");
                return ExitCode::from(2);
            }
        };
        match app.local_addr() {
            Ok(addr) => tracing::info!(%addr, "listening"),
            Err(e) => tracing::warn!("cannot read the listen address: {e}"),
        }
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("server error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
