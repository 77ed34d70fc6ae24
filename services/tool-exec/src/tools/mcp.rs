//! The `mcp:<server>/<tool>` tools: the tools of the MCP servers named in the config, over stdio or
//! streamable HTTP. Arguments are checked against the tool's input schema before anything is sent
//! (a refusal, final). A result the server marks as an error fails the step for good; a transport
//! failure or a timeout may pass on another attempt, on a new connection.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use quorum_mcp::{McpError, McpServer, ServerConfig};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{Call, ToolError};

pub(super) struct McpTool {
    servers: BTreeMap<String, ServerConfig>,
    /// One connection per server, made on first use and dropped after a transport failure.
    live: Mutex<HashMap<String, Arc<McpServer>>>,
}

impl McpTool {
    pub(super) fn new(servers: BTreeMap<String, ServerConfig>) -> Self {
        Self {
            servers,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn servers(&self) -> impl Iterator<Item = &String> {
        self.servers.keys()
    }

    async fn connection(&self, name: &str) -> Result<Arc<McpServer>, ToolError> {
        let config = self
            .servers
            .get(name)
            .ok_or_else(|| ToolError::refused(format!("no mcp server {name:?} is configured")))?;
        let mut live = self.live.lock().await;
        if let Some(c) = live.get(name) {
            return Ok(c.clone());
        }
        let server = Arc::new(McpServer::connect(name, config).await.map_err(classify)?);
        live.insert(name.to_owned(), server.clone());
        Ok(server)
    }

    /// The tools of server `name`, as it lists them.
    pub(super) async fn list(&self, name: &str) -> Result<Vec<quorum_mcp::ToolInfo>, ToolError> {
        self.connection(name)
            .await?
            .list_tools()
            .await
            .map_err(classify)
    }

    pub(super) async fn call(
        &self,
        server: &str,
        tool: &str,
        c: &Call<'_>,
    ) -> Result<Value, ToolError> {
        let connection = self.connection(server).await?;
        match connection
            .call_with_key(tool, c.call.args.clone(), Some(c.idempotency_key))
            .await
        {
            Ok(out) if out.is_error => Err(ToolError::refused(format!(
                "mcp tool {server}/{tool} reported an error: {}",
                out.content
            ))),
            Ok(out) => Ok(json!({ "content": out.content, "structured": out.structured_content })),
            Err(e) => {
                if e.is_retryable() {
                    // The next attempt connects afresh.
                    self.live.lock().await.remove(server);
                }
                Err(classify(e))
            }
        }
    }
}

fn classify(e: McpError) -> ToolError {
    ToolError {
        retryable: e.is_retryable(),
        message: e.to_string(),
    }
}
