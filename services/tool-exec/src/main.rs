//! `quorum-tool-exec`: the tool-exec service as its own process.

use std::process::ExitCode;

use quorum_tool_exec::config::ToolExecConfig;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    quorum_runtime::service::main("tool-exec", |config: ToolExecConfig, cx| async move {
        quorum_tool_exec::start(&config, cx.pool, cx.js, &cx.shutdown, &cx.readiness);
        Ok(())
    })
    .await
}
