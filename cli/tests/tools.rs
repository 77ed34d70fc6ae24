//! `quorum tools list` with a config naming a real MCP server (mcp-server-time, installed by
//! `scripts/setup.sh`): its tools are listed by the names a plan calls them by.

use tokio::process::Command;

#[tokio::test]
async fn tools_list_shows_each_mcp_servers_tools() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("quorum-tools-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("quorum.toml");
    std::fs::write(
        &config,
        r#"
[tool_exec.http]
allowed_hosts = ["127.0.0.1:9000"]

[tool_exec.mcp.time]
transport = "stdio"
command = "python3"
args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]

[tool_exec.default_policy]
allowed_tools = ["http", "mcp:time/*"]
max_steps = 4
"#,
    )?;
    let out = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["--json", "tools", "list", "--config"])
        .arg(&config)
        .output()
        .await?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let names: Vec<&str> = listing["mcp"]["time"]
        .as_array()
        .expect("the server answered")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"mcp:time/get_current_time"), "{names:?}");
    assert_eq!(listing["http"]["allowed_hosts"][0], "127.0.0.1:9000");
    assert_eq!(listing["default_policy"]["allowed_tools"][1], "mcp:time/*");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
