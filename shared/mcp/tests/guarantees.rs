//! What the pipeline relies on beyond "calls work": bad arguments never reach the server,
//! and no server process outlives its client.

use crate::common;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{
    everything_entry, everything_stdio, process_running, text_of, time_stdio, wait_until_gone,
};
use quorum_mcp::{McpError, McpServer, ServerConfig};
use serde_json::json;

fn tap_path() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!(
        "quorum-mcp-tap-{}-{nanos}.jsonl",
        std::process::id()
    ))
}

fn invalid_reason(err: McpError, tool: &str) -> String {
    assert!(!err.is_retryable(), "{err}");
    match err {
        McpError::InvalidArguments { tool: t, reason } if t == tool => reason,
        other => panic!("expected InvalidArguments for {tool}, got {other:?}"),
    }
}

/// server-everything has no call counter, so we watch the wire instead: the server runs
/// behind `tee`, which records every byte the client writes to it. After the refused
/// calls the record holds the handshake and `tools/list` but no `tools/call`; a valid
/// call afterwards shows up, proving the tap would have seen one.
#[tokio::test]
async fn invalid_arguments_are_refused_before_anything_is_sent() {
    let tap = tap_path();
    let config = ServerConfig::stdio(
        "sh",
        [
            "-c".to_owned(),
            r#"tee -a "$0" | exec node "$1" stdio"#.to_owned(),
            tap.display().to_string(),
            everything_entry().display().to_string(),
        ],
    )
    .with_timeout_ms(common::DEADLINE.as_millis() as u64);
    let server = McpServer::connect("everything-tapped", &config)
        .await
        .unwrap();
    server.list_tools().await.unwrap();
    let sent = || std::fs::read_to_string(&tap).unwrap_or_default();
    assert!(
        sent().contains("tools/list"),
        "the tap records traffic: {}",
        sent()
    );

    let wrong_type = server
        .call("echo", json!({"message": 42}))
        .await
        .unwrap_err();
    let reason = invalid_reason(wrong_type, "echo");
    assert!(reason.contains("/message"), "{reason}");

    let missing = server.call("echo", json!({})).await.unwrap_err();
    let reason = invalid_reason(missing, "echo");
    assert!(
        reason.contains("/message") && reason.contains("required"),
        "{reason}"
    );

    let missing_b = server.call("get-sum", json!({"a": 1})).await.unwrap_err();
    let reason = invalid_reason(missing_b, "get-sum");
    assert!(reason.contains("/b"), "{reason}");

    let not_object = server.call("get-sum", json!([1, 2])).await.unwrap_err();
    invalid_reason(not_object, "get-sum");

    let unknown = server.call("no-such-tool", json!({})).await.unwrap_err();
    assert!(
        matches!(&unknown, McpError::UnknownTool { tool, .. } if tool == "no-such-tool"),
        "{unknown:?}"
    );
    assert!(!unknown.is_retryable());

    assert_eq!(
        sent().matches("tools/call").count(),
        0,
        "refused calls reached the server: {}",
        sent()
    );

    let out = server
        .call_with_key("echo", json!({"message": "valid"}), Some("saga-1:0:do"))
        .await
        .unwrap();
    assert_eq!(text_of(&out.content), "Echo: valid");
    assert_eq!(sent().matches("tools/call").count(), 1, "{}", sent());
    // The idempotency key travels in the call's `_meta`.
    let call = sent()
        .lines()
        .find(|l| l.contains("tools/call"))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .unwrap();
    assert_eq!(
        call["params"]["_meta"][quorum_mcp::IDEMPOTENCY_KEY_META],
        "saga-1:0:do",
        "{call}"
    );

    server.close().await;
    let _ = std::fs::remove_file(&tap);
}

async fn assert_killed_on_drop(config: ServerConfig) {
    let server = McpServer::connect("dropped", &config).await.unwrap();
    server.list_tools().await.unwrap();
    let pid = server.pid().expect("a stdio server has a pid");
    assert!(process_running(pid), "server {pid} runs while connected");
    drop(server);
    assert!(
        wait_until_gone(pid).await,
        "server {pid} outlived its dropped client"
    );
}

#[tokio::test]
async fn dropping_the_client_kills_the_node_child() {
    assert_killed_on_drop(everything_stdio()).await;
}

#[tokio::test]
async fn dropping_the_client_kills_the_python_child() {
    assert_killed_on_drop(time_stdio()).await;
}

#[tokio::test]
async fn close_ends_the_child() {
    let server = McpServer::connect("closed", &everything_stdio())
        .await
        .unwrap();
    let pid = server.pid().unwrap();
    server.close().await;
    assert!(wait_until_gone(pid).await, "server {pid} outlived close()");
}

/// A server that does not exit when its stdin closes: the real server-everything runs
/// under `sh`, which then `exec`s into a long `sleep` with the same pid. Real servers do
/// this when stuck, and closing stdin alone would not end them.
fn stubborn_everything() -> ServerConfig {
    ServerConfig::stdio(
        "sh",
        [
            "-c".to_owned(),
            r#"node "$0" stdio; exec sleep 600"#.to_owned(),
            everything_entry().display().to_string(),
        ],
    )
    .with_timeout_ms(common::DEADLINE.as_millis() as u64)
}

#[tokio::test]
async fn dropping_the_client_kills_a_child_that_ignores_eof() {
    assert_killed_on_drop(stubborn_everything()).await;
}

/// The harshest case: the client is dropped and the runtime shut down right after, so
/// rmcp's asynchronous cleanup (EOF, SIGTERM, SIGKILL) never gets to run, and the child
/// ignores EOF. It must still die. (It may linger as a zombie, an exited process waiting
/// to be reaped, which is why this checks the process state rather than `/proc/<pid>`.)
#[test]
fn child_dies_even_when_the_runtime_shuts_down_with_the_client() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = rt
        .block_on(McpServer::connect("abandoned", &stubborn_everything()))
        .unwrap();
    let pid = server.pid().unwrap();
    assert!(process_running(pid));
    drop(server);
    drop(rt);
    let started = std::time::Instant::now();
    while process_running(pid) {
        assert!(
            started.elapsed() < common::DEADLINE,
            "server {pid} survived its runtime"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
