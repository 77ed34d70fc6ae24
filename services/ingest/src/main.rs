//! `quorum-ingest`: the ingest service as its own process. Config from `--config <file.toml>` (or
//! `QUORUM_INGEST_CONFIG`) and `QUORUM__…` variables.

use std::process::ExitCode;

use quorum_ingest::IngestConfig;
use quorum_runtime::Shutdown;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let file: Option<std::path::PathBuf> = match (args.next().as_deref(), args.next()) {
        (Some("--config"), Some(path)) => Some(path.into()),
        (None, _) => std::env::var_os("QUORUM_INGEST_CONFIG").map(Into::into),
        _ => {
            eprintln!("usage: quorum-ingest [--config <file.toml>]");
            return ExitCode::from(2);
        }
    };
    let config: IngestConfig = match quorum_runtime::config::load_validated(file.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = match quorum_runtime::telemetry::init("ingest", config.common.log_format) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: cannot start telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = Shutdown::new();
    if let Err(e) = shutdown.spawn_signal_handler() {
        eprintln!("error: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    match quorum_ingest::run(config, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
