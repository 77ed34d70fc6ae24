//! `quorum-dlq-replayer`: the dead-letter replayer as its own process.

use std::process::ExitCode;

use quorum_dlq_replayer::config::DlqConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    quorum_runtime::service::main("dlq-replayer", |config: DlqConfig, cx| async move {
        let running =
            quorum_dlq_replayer::start(&config, cx.pool, cx.js, &cx.shutdown, &cx.readiness)
                .await
                .map_err(|e| e.to_string())?;
        tracing::info!(addr = %running.http_addr, "dlq api listening");
        Ok(())
    })
    .await
}
