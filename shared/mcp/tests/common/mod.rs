//! Locating and starting the real third-party MCP servers the integration tests use.
//!
//! They are installed by `scripts/setup.sh`; a missing server is a failure with
//! instructions, never a silent skip, so a green run always means the servers were exercised.

#![allow(dead_code)] // each test binary uses a different subset of these helpers

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use quorum_mcp::ServerConfig;

/// Generous: a cold `node` or `python3` start on a busy 2-core machine can take seconds.
pub const DEADLINE: Duration = Duration::from_secs(60);

const RUN_SCRIPT: &str = "run scripts/setup.sh first";

pub fn servers_dir() -> PathBuf {
    match std::env::var_os("QUORUM_MCP_SERVERS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/quorum-mcp-servers"),
    }
}

/// The entry script of `@modelcontextprotocol/server-everything`. Run through `node`
/// directly (not `npx`) so the pid we get is the server's own, not a launcher's.
pub fn everything_entry() -> PathBuf {
    let entry =
        servers_dir().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "server-everything is not installed at {}: {RUN_SCRIPT}",
        entry.display()
    );
    entry
}

pub fn everything_stdio() -> ServerConfig {
    ServerConfig::stdio(
        "node",
        [everything_entry().display().to_string(), "stdio".to_owned()],
    )
    .with_timeout_ms(DEADLINE.as_millis() as u64)
}

pub fn time_stdio() -> ServerConfig {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import mcp_server_time"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("python3 is on PATH");
    assert!(
        probe.success(),
        "mcp-server-time is not importable by python3: {RUN_SCRIPT}"
    );
    ServerConfig::stdio(
        "python3",
        ["-m", "mcp_server_time", "--local-timezone", "UTC"],
    )
    .with_timeout_ms(DEADLINE.as_millis() as u64)
}

/// server-everything in streamable-HTTP mode on a free loopback port; killed on drop.
pub struct HttpEverything {
    child: tokio::process::Child,
    pub url: String,
}

impl HttpEverything {
    pub async fn start() -> HttpEverything {
        let entry = everything_entry();
        // Ask the OS for a free port, then hand it to the server. Another process could
        // grab it in between; on a test machine that is rare enough to accept.
        let port = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("bind an ephemeral port")
            .port();
        let child = tokio::process::Command::new("node")
            .arg(&entry)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node for server-everything streamableHttp");
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        let started = Instant::now();
        while TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1)).is_err() {
            assert!(
                started.elapsed() < DEADLINE,
                "server-everything never listened on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        HttpEverything {
            child,
            url: format!("http://{addr}/mcp"),
        }
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// True while `/proc/<pid>` exists and is not a zombie (a zombie has exited; only its
/// exit status is left for the parent to collect).
pub fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
    }
}

/// Waits up to [`DEADLINE`] for `pid` to disappear from `/proc` entirely.
pub async fn wait_until_gone(pid: u32) -> bool {
    let started = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if started.elapsed() > DEADLINE {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    true
}

/// The text of every `text` content block, concatenated.
pub fn text_of(content: &serde_json::Value) -> String {
    content
        .as_array()
        .expect("content is an array of blocks")
        .iter()
        .filter_map(|block| block.get("text").and_then(|t| t.as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}
