//! `quorum-expert-fanout`: the expert fan-out as its own process.

use std::process::ExitCode;

use quorum_expert_fanout::config::FanoutConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    quorum_runtime::service::main("expert-fanout", |config: FanoutConfig, cx| async move {
        quorum_expert_fanout::start(cx.pool, cx.js, config.experts, &cx.shutdown, &cx.readiness);
        Ok(())
    })
    .await
}
