//! Against `mcp-server-time` (PyPI), a Python server, over stdio.

use crate::common;

use common::{text_of, time_stdio};
use quorum_mcp::{CallOutput, McpServer};
use serde_json::json;

#[tokio::test]
async fn get_current_time_in_utc() {
    let server = McpServer::connect("time", &time_stdio()).await.unwrap();
    let tools = server.list_tools().await.unwrap();
    let get_time = tools
        .iter()
        .find(|t| t.name == "get_current_time")
        .unwrap_or_else(|| panic!("get_current_time missing from {tools:?}"));
    assert_eq!(get_time.input_schema["required"], json!(["timezone"]));

    let out = server
        .call("get_current_time", json!({"timezone": "UTC"}))
        .await
        .unwrap();
    assert!(!out.is_error, "{}", out.content);
    let text = text_of(&out.content);
    assert!(text.contains("UTC"), "{text}");
    // The result is a JSON document in a text block; check it says what we asked for.
    let parsed: serde_json::Value = serde_json::from_str(&text).expect("time result is JSON");
    assert_eq!(parsed["timezone"], "UTC");
    server.close().await;
}

/// A tool that ran and failed is a *result* with `is_error: true`, not an `McpError`:
/// the step failed, the connection is fine, and there is nothing to retry. Because it is
/// not an error value at all, no retry policy built on `McpError::is_retryable` can
/// retry it.
#[tokio::test]
async fn invalid_timezone_is_a_tool_error_result() {
    let server = McpServer::connect("time", &time_stdio()).await.unwrap();
    let result = server
        .call("get_current_time", json!({"timezone": "Not/AZone"}))
        .await;
    let Ok(CallOutput {
        is_error: true,
        content,
        ..
    }) = result
    else {
        panic!("expected a tool-level error result, got {result:?}");
    };
    assert!(text_of(&content).contains("Invalid timezone"), "{content}");

    // The session survives a tool error: the next call works.
    let out = server
        .call("get_current_time", json!({"timezone": "Europe/London"}))
        .await
        .unwrap();
    assert!(!out.is_error);
    server.close().await;
}
