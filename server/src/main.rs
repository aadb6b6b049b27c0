use std::process::ExitCode;

use baton::config::{Cli, Command};
use baton::{http, startup, telemetry};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Openapi = command {
        print!("{}", http::openapi_document());
        return ExitCode::SUCCESS;
    }
    telemetry::init(cli.settings.log_format);
    let result = match command {
        Command::Serve => startup::serve(cli.settings).await,
        Command::Migrate => startup::open_database(&cli.settings).await.map(|_| {
            tracing::info!("migrations applied");
        }),
        Command::RotateKeys => startup::rotate_keys(cli.settings).await.map(|kid| {
            tracing::info!(kid = %kid, "new signing key active; the previous one stays in the JWKS until its tokens expire");
            println!("{kid}");
        }),
        Command::Openapi => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("baton: {e:#}");
            ExitCode::FAILURE
        }
    }
}
