//! The `custodia` binary: read the configuration, build the app, serve until
//! SIGTERM. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use server::{App, Config, shutdown_signal, telemetry};

#[tokio::main]
#[expect(
    clippy::print_stderr,
    reason = "an invalid log setting can only be reported before logging exists"
)]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(err) = telemetry::init(config.log_format, &config.log) {
        eprintln!("custodia: invalid log settings: {err}");
        return ExitCode::FAILURE;
    }
    let bound = match App::build(config).await {
        Ok(app) => app.bind().await,
        Err(err) => Err(err),
    };
    let bound = match bound {
        Ok(bound) => bound,
        Err(err) => {
            tracing::error!(error = %err, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    match bound.run_until(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "server failed");
            ExitCode::FAILURE
        }
    }
}
