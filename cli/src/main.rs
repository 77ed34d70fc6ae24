//! The `quorum` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

// The relay and the consumers allocate many small strings and header maps per event; mimalloc takes
// that churn at a fraction of glibc malloc's cost (measured with `quorum bench store`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
