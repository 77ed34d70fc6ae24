//! Plans calling the tools of real MCP servers nobody here wrote (installed by `scripts/setup.sh`):
//! `@modelcontextprotocol/server-everything` over stdio and over streamable HTTP, and
//! `mcp-server-time` over stdio. A failing call is compensated; arguments that fail a tool's schema
//! are refused before anything is sent.

use crate::common;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use quorum_mcp::ServerConfig;
use quorum_runtime::Readiness;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::json;

fn everything_entry() -> PathBuf {
    let dir = std::env::var_os("QUORUM_MCP_SERVERS_DIR").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/quorum-mcp-servers"),
        PathBuf::from,
    );
    let entry = dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "server-everything is not installed at {}: run scripts/setup.sh",
        entry.display()
    );
    entry
}

/// server-everything in streamable-HTTP mode on a free port; killed on drop.
async fn http_everything() -> anyhow::Result<(tokio::process::Child, String)> {
    let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    let child = tokio::process::Command::new("node")
        .arg(everything_entry())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    wait_until("server-everything to listen", DEADLINE, || async {
        TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1)).is_ok()
    })
    .await?;
    Ok((child, format!("http://{addr}/mcp")))
}

#[tokio::test]
async fn plans_call_real_mcp_servers_and_a_failing_call_is_compensated() -> anyhow::Result<()> {
    let env = env().await?;
    let (_http_server, url) = http_everything().await?;
    let mut config = config(&env, 1);
    let entry = everything_entry().display().to_string();
    config.mcp.insert(
        "everything".into(),
        ServerConfig::stdio("node", [entry, "stdio".to_owned()]),
    );
    config
        .mcp
        .insert("everything-http".into(), ServerConfig::http(url));
    config.mcp.insert(
        "time".into(),
        ServerConfig::stdio(
            "python3",
            ["-m", "mcp_server_time", "--local-timezone", "UTC"],
        ),
    );
    config.default_policy.allowed_tools = vec!["mcp:*".into()];
    quorum_tool_exec::start(
        &config,
        env.db.pool.clone(),
        env.js.clone(),
        &env.shutdown,
        &Readiness::new(),
    );

    let plan = json!({ "steps": [
        { "name": "now", "tool": { "tool": "mcp:time/get_current_time", "args": { "timezone": "UTC" } },
          "compensate": { "tool": "mcp:everything/echo", "args": { "message": "undo now" } } },
        { "name": "sum", "tool": { "tool": "mcp:everything-http/get-sum", "args": { "a": 2, "b": 40 } } },
        { "name": "bad-zone", "tool": { "tool": "mcp:time/get_current_time", "args": { "timezone": "Not/AZone" } } },
    ]});
    let id = submit(&env.store, plan).await?;
    let types = wait_until("the saga to end", DEADLINE * 2, || async {
        let t = saga_types(&env.store, &id).await.ok()?;
        t.last().is_some_and(|t| is_terminal(t)).then_some(t)
    })
    .await?;
    assert_eq!(
        types.last().unwrap(),
        "quorum.tool.plan.compensated",
        "{types:?}"
    );
    let events = saga_events(&env.store, &id).await?;
    let outputs: Vec<String> = events
        .iter()
        .filter(|(t, _)| t == "quorum.tool.step.succeeded")
        .map(|(_, d)| d["output"]["content"].to_string())
        .collect();
    assert!(outputs[0].contains("UTC"), "{}", outputs[0]);
    assert!(outputs[1].contains("42"), "{}", outputs[1]);
    assert!(
        outputs[2].contains("Echo: undo now"),
        "the compensation ran: {}",
        outputs[2]
    );
    let failed = events
        .iter()
        .find(|(t, _)| t == "quorum.tool.step.failed")
        .unwrap();
    assert_eq!(failed.1["step"], 2);
    assert_eq!(failed.1["retryable"], false, "a tool-level error is final");

    // Arguments that fail the tool's input schema: refused, named, nothing sent, not retried.
    let id = submit(&env.store, json!({ "steps": [
        { "name": "echo", "tool": { "tool": "mcp:everything/echo", "args": { "message": 42 } } },
    ]}))
    .await?;
    wait_until("the refused saga to end", DEADLINE, || async {
        saga_types(&env.store, &id)
            .await
            .ok()
            .is_some_and(|t| t.last().is_some_and(|t| is_terminal(t)))
    })
    .await?;
    let events = saga_events(&env.store, &id).await?;
    let failed: Vec<_> = events
        .iter()
        .filter(|(t, _)| t == "quorum.tool.step.failed")
        .collect();
    assert_eq!(failed.len(), 1);
    let error = failed[0].1["error"].as_str().unwrap();
    assert!(error.contains("/message"), "{error}");
    env.shutdown.cancel();
    Ok(())
}
