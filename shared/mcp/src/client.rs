//! A connection to one MCP server: connect, list tools (cached), validate and call.

use std::collections::HashMap;
use std::ffi::OsString;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, RequestParamsMeta};
use rmcp::service::RunningService;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceError, ServiceExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::config::ServerConfig;

/// The `_meta` key of a tool call's idempotency key.
pub const IDEMPOTENCY_KEY_META: &str = "quorum/idempotency-key";
use crate::error::McpError;
use crate::schema::ArgsSchema;

/// A tool as advertised by the server's `tools/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub description: Option<String>,
    pub input_schema: Value,
}

/// The result of a tool that ran. `is_error` means the *tool* reported failure (the
/// caller treats the step as failed); transport failures are [`McpError`]s instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallOutput {
    /// The MCP content blocks, as JSON (`[{"type": "text", "text": ...}, ...]`).
    pub content: Value,
    pub is_error: bool,
    /// The tool's `structuredContent`, when it returns one.
    pub structured_content: Option<Value>,
}

/// Tools as listed once, with their schemas compiled once: `call` validates every time,
/// and recompiling per call would be wasted work on the hot path.
struct Catalog {
    tools: Vec<ToolInfo>,
    schemas: HashMap<String, ArgsSchema>,
}

/// A live connection to one MCP server.
///
/// Dropping it (or calling [`McpServer::close`]) ends the session; for a stdio server the
/// child process is killed, so no server outlives its client.
pub struct McpServer {
    name: String,
    timeout: Duration,
    pid: Option<u32>,
    service: RunningService<RoleClient, ()>,
    catalog: OnceCell<Catalog>,
}

impl McpServer {
    /// Starts (stdio) or reaches (HTTP) the server and completes the MCP handshake, all
    /// within the configured timeout.
    pub async fn connect(name: &str, config: &ServerConfig) -> Result<McpServer, McpError> {
        let timeout = config.timeout();
        let connect_error = |reason: String| McpError::Connect {
            server: name.to_owned(),
            reason,
        };
        let (service, pid) = match config {
            ServerConfig::Stdio {
                command,
                args,
                env,
                env_set,
                ..
            } => {
                // Found through the service's PATH, as configured; the server does not get it.
                let program = resolve_program(command)
                    .ok_or_else(|| connect_error(format!("{command} is not found on PATH")))?;
                let mut cmd = tokio::process::Command::new(program);
                // kill_on_drop: rmcp kills the child from a spawned task when its transport
                // is dropped, which never runs if the runtime is already shutting down.
                // tokio's own flag sends SIGKILL synchronously in that case too.
                cmd.args(args)
                    .env_clear()
                    .envs(passed_through(env))
                    .envs(env_set)
                    .kill_on_drop(true);
                let transport = TokioChildProcess::new(cmd)
                    .map_err(|e| connect_error(format!("spawn {command}: {e}")))?;
                let pid = transport.id();
                let service = bounded(name, "connect", timeout, ().serve(transport))
                    .await?
                    .map_err(|e| connect_error(e.to_string()))?;
                (service, pid)
            }
            ServerConfig::Http { url, .. } => {
                let transport = StreamableHttpClientTransport::with_client(
                    quorum_http_client::client(),
                    StreamableHttpClientTransportConfig::with_uri(url.as_str()),
                );
                let service = bounded(name, "connect", timeout, ().serve(transport))
                    .await?
                    .map_err(|e| connect_error(format!("{url}: {e}")))?;
                (service, None)
            }
        };
        Ok(McpServer {
            name: name.to_owned(),
            timeout,
            pid,
            service,
            catalog: OnceCell::new(),
        })
    }

    /// The name this server was configured under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The process id of a stdio server's child, for supervision; `None` for HTTP.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The server's tools. Listed once per connection and cached: MCP tool sets are
    /// expected to be stable for a session, and `call` needs the schemas anyway.
    pub async fn list_tools(&self) -> Result<Vec<ToolInfo>, McpError> {
        Ok(self.catalog().await?.tools.clone())
    }

    /// Validates `args` against the tool's input schema, then calls the tool.
    ///
    /// Nothing is sent to the server when the tool is unknown or the arguments do not
    /// validate. `Value::Null` is taken as "no arguments" (an empty object).
    pub async fn call(&self, tool: &str, args: Value) -> Result<CallOutput, McpError> {
        self.call_with_key(tool, args, None).await
    }

    /// [`Self::call`], carrying `idempotency_key` in the request's `_meta` under
    /// [`IDEMPOTENCY_KEY_META`]. MCP has no standard idempotency field; `_meta` is where the
    /// protocol lets a client attach such data, so a server that honours the key finds it there
    /// (and one that does not ignores it).
    pub async fn call_with_key(
        &self,
        tool: &str,
        args: Value,
        idempotency_key: Option<&str>,
    ) -> Result<CallOutput, McpError> {
        let catalog = self.catalog().await?;
        let schema = catalog
            .schemas
            .get(tool)
            .ok_or_else(|| McpError::UnknownTool {
                server: self.name.clone(),
                tool: tool.to_owned(),
            })?;
        let args = if args.is_null() {
            Value::Object(Default::default())
        } else {
            args
        };
        let invalid = |reason: String| McpError::InvalidArguments {
            tool: tool.to_owned(),
            reason,
        };
        schema.check(&args).map_err(invalid)?;
        // MCP carries arguments as an object; a schema that accepts anything else cannot
        // be honoured on the wire.
        let Value::Object(arguments) = args else {
            return Err(invalid("at /: arguments must be a JSON object".to_owned()));
        };

        let mut params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        if let Some(key) = idempotency_key {
            params
                .meta_or_default()
                .insert(IDEMPOTENCY_KEY_META.to_owned(), Value::from(key));
        }
        let result = self
            .bounded("tools/call", self.service.call_tool(params))
            .await?
            .map_err(|e| self.call_error(e))?;
        let content = serde_json::to_value(&result.content).map_err(|e| McpError::Call {
            server: self.name.clone(),
            reason: format!("content blocks do not serialise: {e}"),
        })?;
        Ok(CallOutput {
            content,
            is_error: result.is_error.unwrap_or(false),
            structured_content: result.structured_content,
        })
    }

    /// Ends the session and, for stdio, waits (bounded) for the child to exit; whatever
    /// is left when the bound expires is killed on drop.
    pub async fn close(self) {
        let mut service = self.service;
        // rmcp's graceful stdio shutdown (EOF, then SIGTERM, then SIGKILL) can take a few
        // seconds on a stubborn server, so allow at least that much.
        let bound = self.timeout.max(Duration::from_secs(10));
        let _ = service.close_with_timeout(bound).await;
    }

    async fn catalog(&self) -> Result<&Catalog, McpError> {
        self.catalog
            .get_or_try_init(|| async {
                let tools = self
                    .bounded("tools/list", self.service.list_all_tools())
                    .await?
                    .map_err(|e| self.call_error(e))?;
                let mut infos = Vec::with_capacity(tools.len());
                let mut schemas = HashMap::with_capacity(tools.len());
                for tool in tools {
                    let input_schema = Value::Object((*tool.input_schema).clone());
                    schemas.insert(tool.name.to_string(), ArgsSchema::compile(&input_schema));
                    infos.push(ToolInfo {
                        name: tool.name.into_owned(),
                        description: tool.description.map(|d| d.into_owned()),
                        input_schema,
                    });
                }
                Ok(Catalog {
                    tools: infos,
                    schemas,
                })
            })
            .await
    }

    async fn bounded<T>(
        &self,
        operation: &str,
        fut: impl Future<Output = T>,
    ) -> Result<T, McpError> {
        bounded(&self.name, operation, self.timeout, fut).await
    }

    fn call_error(&self, e: ServiceError) -> McpError {
        McpError::Call {
            server: self.name.clone(),
            reason: e.to_string(),
        }
    }
}

/// The named variables that are set in this process, for a server's otherwise empty environment.
fn passed_through(names: &[String]) -> Vec<(OsString, OsString)> {
    names
        .iter()
        .filter_map(|name| std::env::var_os(name).map(|v| (OsString::from(name), v)))
        .collect()
}

/// `command` itself when it names a path, else the first executable file of that name on this
/// process's `PATH` (the server's own environment may have no `PATH` at all).
fn resolve_program(command: &str) -> Option<PathBuf> {
    if command.contains('/') {
        return Some(PathBuf::from(command));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(command))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Runs `fut` under `timeout`. Dropping an rmcp request future on expiry also tells the
/// server the request is cancelled, so a timed-out call does not keep running unseen.
async fn bounded<T>(
    server: &str,
    operation: &str,
    timeout: Duration,
    fut: impl Future<Output = T>,
) -> Result<T, McpError> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| McpError::Timeout {
            server: server.to_owned(),
            operation: operation.to_owned(),
            timeout,
        })
}
