//! `quorum-ingest`: the ingest service as its own process. Config from `--config <file.toml>` (or
//! `QUORUM_INGEST_CONFIG`) and `QUORUM__…` variables.

use std::process::ExitCode;

use quorum_ingest::IngestConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    quorum_runtime::service::main("ingest", |config: IngestConfig, cx| async move {
        quorum_ingest::start(&config, &cx.shutdown, &cx.readiness)
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:#}"))
    })
    .await
}
