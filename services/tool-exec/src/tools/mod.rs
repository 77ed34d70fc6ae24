//! The tools a step can call, behind the same layers as experts: a timeout (the step's), a
//! concurrency limit per kind, and a classification of every failure as retryable or not, which the
//! saga's attempts act on (each attempt is an event, so retries survive a crash).

mod exec;
mod http;
pub(crate) mod http_guard;
mod mcp;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use quorum_saga::ToolCall;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::config::ToolExecConfig;

/// Why a call failed, and whether trying again may help.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    pub message: String,
    pub retryable: bool,
}

impl ToolError {
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }

    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }
}

/// One call, as a step asks it.
pub struct Call<'a> {
    pub call: &'a ToolCall,
    /// The same for every attempt of a step, so a tool that honours it applies the step once.
    pub idempotency_key: &'a str,
    /// The saga's working directory, for `exec`.
    pub workdir: &'a Path,
    pub timeout: Duration,
}

/// Every configured tool.
pub struct Tools {
    http: http::HttpTool,
    exec: exec::ExecTool,
    mcp: mcp::McpTool,
    http_slots: Arc<Semaphore>,
    exec_slots: Arc<Semaphore>,
    mcp_slots: Arc<Semaphore>,
}

impl Tools {
    pub fn new(config: &ToolExecConfig) -> Self {
        Self {
            http: http::HttpTool::new(&config.http),
            exec: exec::ExecTool::new(config.exec.clone()),
            mcp: mcp::McpTool::new(config.mcp.clone()),
            http_slots: Arc::new(Semaphore::new(config.http.concurrency)),
            exec_slots: Arc::new(Semaphore::new(config.exec_concurrency)),
            mcp_slots: Arc::new(Semaphore::new(config.mcp_concurrency)),
        }
    }

    /// The configured MCP servers' names.
    pub fn mcp_servers(&self) -> Vec<String> {
        self.mcp.servers().cloned().collect()
    }

    /// How `exec` runs are contained on this machine under the configured mode, and why none
    /// will run if the mode is strict and the machine lacks what it needs.
    pub async fn exec_containment(&self) -> quorum_sandbox::Containment {
        quorum_sandbox::containment(self.exec.policy()).await
    }

    /// The tools of MCP server `name` (connecting to it if need be).
    pub async fn mcp_tools(&self, name: &str) -> Result<Vec<quorum_mcp::ToolInfo>, ToolError> {
        self.mcp.list(name).await
    }

    /// Calls the tool; the output is recorded in the step's event.
    pub async fn call(&self, c: Call<'_>) -> Result<Value, ToolError> {
        let (slots, kind) = match c.call.tool.as_str() {
            "http" => (&self.http_slots, Kind::Http),
            "exec" => (&self.exec_slots, Kind::Exec),
            other => match other.strip_prefix("mcp:").and_then(|t| t.split_once('/')) {
                Some((server, tool)) => (&self.mcp_slots, Kind::Mcp { server, tool }),
                None => {
                    return Err(ToolError::refused(format!(
                        "no tool {other:?} is configured"
                    )));
                }
            },
        };
        // The wait for a slot counts against the step's timeout, as the call does.
        let work = async {
            let _slot = slots
                .acquire()
                .await
                .map_err(|_| ToolError::transient("shutting down"))?;
            match kind {
                Kind::Http => self.http.call(&c).await,
                Kind::Exec => self.exec.call(&c).await,
                Kind::Mcp { server, tool } => self.mcp.call(server, tool, &c).await,
            }
        };
        match tokio::time::timeout(c.timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(ToolError::transient(format!(
                "timed out after {:?}",
                c.timeout
            ))),
        }
    }
}

enum Kind<'a> {
    Http,
    Exec,
    Mcp { server: &'a str, tool: &'a str },
}
