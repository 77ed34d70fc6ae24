//! `quorum-consensus`: the consensus service as its own process.

use std::process::ExitCode;

use quorum_consensus::config::ConsensusConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    quorum_runtime::service::main("consensus", |config: ConsensusConfig, cx| async move {
        quorum_consensus::start(
            cx.pool,
            cx.js,
            config.experts.clone(),
            config.methods(),
            &cx.shutdown,
            &cx.readiness,
        );
        Ok(())
    })
    .await
}
