//! The http tool reaches only what the operator listed: a hostname that resolves to loopback is
//! refused unless listed under `private_hosts`, host and port must both match, a plan cannot set
//! `Host`, and a body is read only up to the cap. Calls go through `Tools` against test servers on
//! loopback; no NATS or Postgres is needed.

use crate::common;

use std::net::SocketAddr;
use std::time::Duration;

use common::service;
use quorum_saga::ToolCall;
use quorum_tool_exec::config::ToolExecConfig;
use quorum_tool_exec::tools::{Call, ToolError, Tools};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn call(config: &ToolExecConfig, args: Value) -> Result<Value, ToolError> {
    let tools = Tools::new(config);
    let call = ToolCall {
        tool: "http".into(),
        args,
    };
    tools
        .call(Call {
            call: &call,
            idempotency_key: "saga-1:0:do",
            workdir: &std::env::temp_dir(),
            timeout: Duration::from_secs(20),
        })
        .await
}

fn post(url: String) -> Value {
    json!({ "method": "POST", "url": url })
}

fn refused(result: Result<Value, ToolError>) -> String {
    let err = result.expect_err("the call should have been refused");
    assert!(!err.retryable, "a refusal is final: {err}");
    err.message
}

#[tokio::test]
async fn a_hostname_resolving_to_loopback_is_refused_unless_listed_as_private() {
    let (addr, rec) = service().await.unwrap();
    let port = addr.port();
    let url = format!("http://localhost:{port}/apply/1");
    let mut config = ToolExecConfig::default();
    config.http.allowed_hosts = vec![format!("localhost:{port}")];

    let message = refused(call(&config, post(url.clone())).await);
    assert!(
        message.contains("localhost") && message.contains("private_hosts"),
        "{message}"
    );
    assert!(rec.received().is_empty(), "a request reached loopback");

    config.http.allowed_hosts.clear();
    config.http.private_hosts = vec![format!("localhost:{port}")];
    let out = call(&config, post(url)).await.unwrap();
    assert_eq!(out["status"], 200);
    assert_eq!(rec.received().len(), 1);
}

#[tokio::test]
async fn host_and_port_must_both_match() {
    let (addr, rec) = service().await.unwrap();
    let mut config = ToolExecConfig::default();
    // No port: only the scheme's default port (80) is admitted.
    config.http.allowed_hosts = vec!["127.0.0.1".into()];
    let message = refused(call(&config, post(format!("http://{addr}/apply/1"))).await);
    assert!(message.contains("not on the http allowlist"), "{message}");

    config.http.allowed_hosts = vec![format!("127.0.0.1:{}", addr.port() ^ 1)];
    refused(call(&config, post(format!("http://{addr}/apply/1"))).await);
    assert!(rec.received().is_empty());

    config.http.allowed_hosts = vec![addr.to_string()];
    let out = call(&config, post(format!("http://{addr}/apply/1")))
        .await
        .unwrap();
    assert_eq!(out["status"], 200);
}

#[tokio::test]
async fn a_plan_cannot_set_the_host_header() {
    let (addr, rec) = service().await.unwrap();
    let mut config = ToolExecConfig::default();
    config.http.allowed_hosts = vec![addr.to_string()];
    for name in ["Host", "host", "Transfer-Encoding"] {
        let args = json!({
            "method": "POST",
            "url": format!("http://{addr}/apply/1"),
            "headers": { name: "metadata.google.internal" },
        });
        let message = refused(call(&config, args).await);
        assert!(
            message.contains(&format!("cannot set the {name} header")),
            "{message}"
        );
    }
    assert!(rec.received().is_empty());
}

/// Answers every connection with a body that never ends.
async fn endless_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let _ = socket.read(&mut head).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n")
                    .await;
                let chunk = vec![b'x'; 64 * 1024];
                while socket.write_all(&chunk).await.is_ok() {}
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_endless_body_is_read_only_up_to_the_cap() {
    let addr = endless_server().await;
    let mut config = ToolExecConfig::default();
    config.http.allowed_hosts = vec![addr.to_string()];
    config.http.max_response_bytes = 1000;
    let out = call(
        &config,
        json!({ "method": "GET", "url": format!("http://{addr}/") }),
    )
    .await
    .unwrap();
    assert_eq!(out["truncated"], true);
    assert_eq!(out["body"]["text"].as_str().unwrap().len(), 1000);
}
