//! MCP client for Quorum's `tool-exec` service: connect to a configured MCP server, list its tools and call them.
//!
//! Arguments are checked against each tool's advertised input schema before anything is
//! sent, so a malformed step fails locally and deterministically instead of reaching a
//! server that may have side effects.

mod client;
mod config;
mod error;
mod schema;

pub use client::{CallOutput, IDEMPOTENCY_KEY_META, McpServer, ToolInfo};
pub use config::{DEFAULT_TIMEOUT_MS, ServerConfig};
pub use error::McpError;
