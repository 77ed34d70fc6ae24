//! The `quorum` binary: parse, run, map the outcome to an exit code (`quorum::exit`).

use std::process::ExitCode;

use clap::Parser;
use quorum::exit::{self, CliError};

// The relay and the consumers allocate many small strings and header maps per event; mimalloc takes
// that churn at a fraction of glibc malloc's cost (measured with `quorum bench store`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match quorum::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return exit::clap_error(&e),
    };
    let json = cli.json;
    let _telemetry = if cli.logs() {
        match quorum_runtime::telemetry::init("quorum", quorum_runtime::LogFormat::Auto) {
            Ok(guard) => Some(guard),
            Err(e) => {
                let e = CliError::usage(format!("cannot start logging: {e}"));
                return exit::report(&e.into(), json);
            }
        }
    } else {
        None
    };
    match quorum::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => exit::report(&e, json),
    }
}
