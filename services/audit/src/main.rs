//! `quorum-audit`: the audit service as its own process.

use std::process::ExitCode;

use quorum_audit::config::AuditConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    quorum_runtime::service::main("audit", |config: AuditConfig, cx| async move {
        let running = quorum_audit::start(&config, cx.pool, &cx.shutdown, &cx.readiness)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(addr = %running.http_addr, "audit api listening");
        Ok(())
    })
    .await
}
