//! The `quorum` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = quorum::Cli::parse();
    let _telemetry =
        match quorum_runtime::telemetry::init("quorum", quorum_runtime::LogFormat::Auto) {
            Ok(guard) => guard,
            Err(e) => {
                eprintln!("error: cannot start telemetry: {e}");
                return ExitCode::FAILURE;
            }
        };
    match quorum::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
