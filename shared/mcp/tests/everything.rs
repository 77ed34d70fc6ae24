//! Against `@modelcontextprotocol/server-everything`, over stdio and streamable HTTP.

use crate::common;

use common::{HttpEverything, everything_stdio, text_of};
use quorum_mcp::{McpError, McpServer, ServerConfig};
use serde_json::json;

fn names(tools: &[quorum_mcp::ToolInfo]) -> Vec<&str> {
    tools.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test]
async fn stdio_lists_tools_and_calls_echo_and_sum() {
    let server = McpServer::connect("everything", &everything_stdio())
        .await
        .unwrap();

    let tools = server.list_tools().await.unwrap();
    let listed = names(&tools);
    for expected in ["echo", "get-sum", "get-env"] {
        assert!(
            listed.contains(&expected),
            "{expected} missing from {listed:?}"
        );
    }
    let echo = tools.iter().find(|t| t.name == "echo").unwrap();
    assert_eq!(
        echo.description.as_deref(),
        Some("Echoes back the input string")
    );
    assert_eq!(echo.input_schema["properties"]["message"]["type"], "string");

    let out = server
        .call("echo", json!({"message": "hello quorum"}))
        .await
        .unwrap();
    assert!(!out.is_error);
    assert_eq!(out.content[0]["type"], "text");
    assert_eq!(text_of(&out.content), "Echo: hello quorum");

    let out = server
        .call("get-sum", json!({"a": 2, "b": 40}))
        .await
        .unwrap();
    assert!(!out.is_error);
    assert!(text_of(&out.content).contains("is 42"), "{}", out.content);

    server.close().await;
}

/// The server's environment is exactly the allowlist: named variables passed through, plus the
/// ones set in its config; nothing else of this process's environment (here a variable standing
/// for a database URL) reaches it.
#[tokio::test]
async fn stdio_server_sees_only_its_allowlisted_environment() {
    // SAFETY: set before anything else runs in this test process (nextest runs each test in a
    // process of its own, and the runtime of a `#[tokio::test]` is single-threaded).
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(
            "QUORUM_MCP_TEST_SECRET",
            "postgres://service:password@db/quorum",
        );
    }
    let config = everything_stdio()
        .with_env(["PATH", "HOME", "QUORUM_MCP_TEST_UNSET"])
        .with_env_set("QUORUM_MCP_TEST_MARKER", "marker-7f3a");
    let server = McpServer::connect("everything", &config).await.unwrap();
    let out = server
        .call("get-env", serde_json::Value::Null)
        .await
        .unwrap();
    server.close().await;
    let text = text_of(&out.content);
    assert!(
        !text.contains("password"),
        "the service's secret leaked: {text}"
    );
    let seen: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text.trim_start_matches(|c| c != '{'))
            .unwrap_or_else(|e| panic!("get-env printed no JSON object ({e}): {text}"));
    let mut names: Vec<&str> = seen.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["HOME", "PATH", "QUORUM_MCP_TEST_MARKER"],
        "an unset name is not passed as empty: {text}"
    );
    assert_eq!(seen["QUORUM_MCP_TEST_MARKER"], "marker-7f3a");
    assert_eq!(seen["PATH"].as_str(), std::env::var("PATH").ok().as_deref());
}

#[tokio::test]
async fn http_lists_tools_and_calls_echo() {
    let http = HttpEverything::start().await;
    let server = McpServer::connect("everything-http", &ServerConfig::http(&http.url))
        .await
        .unwrap();
    assert_eq!(server.pid(), None);

    let listed = server.list_tools().await.unwrap();
    let listed = names(&listed);
    for expected in ["echo", "get-sum"] {
        assert!(
            listed.contains(&expected),
            "{expected} missing from {listed:?}"
        );
    }
    let out = server
        .call("echo", json!({"message": "over http"}))
        .await
        .unwrap();
    assert!(!out.is_error);
    assert_eq!(text_of(&out.content), "Echo: over http");

    server.close().await;
    http.stop().await;
}

#[tokio::test]
async fn http_connect_failure_is_a_retryable_connect_error() {
    // Port 9 (discard) on loopback: nothing of ours listens there, so the connection is refused.
    let err = McpServer::connect("nobody", &ServerConfig::http("http://127.0.0.1:9/mcp"))
        .await
        .err()
        .expect("connect must fail");
    assert!(matches!(err, McpError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn missing_command_is_a_connect_error() {
    let config = ServerConfig::stdio("/nonexistent/quorum-mcp-server", Vec::<String>::new());
    let err = McpServer::connect("ghost", &config)
        .await
        .err()
        .expect("spawn must fail");
    assert!(matches!(err, McpError::Connect { .. }), "{err:?}");
}

#[tokio::test]
async fn slow_call_times_out_and_is_retryable() {
    let config = everything_stdio().with_timeout_ms(2_000);
    // Whichever operation the 2s bound cuts off first (a cold start on a loaded machine
    // may already exceed it), the outcome must be a Timeout: the 30s operation can never
    // finish inside it. So this asserts the bound is enforced without asserting on speed.
    let err = match McpServer::connect("everything-tight", &config).await {
        Err(e) => e,
        Ok(server) => {
            let err = match server.list_tools().await {
                Err(e) => e,
                Ok(_) => server
                    .call(
                        "trigger-long-running-operation",
                        json!({"duration": 30, "steps": 2}),
                    )
                    .await
                    .expect_err("a 30s operation cannot finish within 2s"),
            };
            server.close().await;
            err
        }
    };
    assert!(matches!(err, McpError::Timeout { .. }), "{err:?}");
    assert!(err.is_retryable());
}
