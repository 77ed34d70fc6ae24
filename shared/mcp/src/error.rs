//! The error type, split by what the caller should do about it.

use std::time::Duration;

/// Failures of an MCP operation. A tool that ran and reported failure is *not* one of
/// these: it comes back as [`crate::CallOutput`] with `is_error: true`.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    /// The server could not be started, reached, or did not complete the MCP handshake.
    #[error("connect to mcp server {server}: {reason}")]
    Connect { server: String, reason: String },
    /// The server does not advertise a tool of that name.
    #[error("unknown tool {tool} on mcp server {server}")]
    UnknownTool { server: String, tool: String },
    /// The arguments do not satisfy the tool's input schema; nothing was sent.
    #[error("invalid arguments for tool {tool}: {reason}")]
    InvalidArguments { tool: String, reason: String },
    /// Transport or protocol failure after connecting (includes JSON-RPC errors).
    #[error("call to mcp server {server} failed: {reason}")]
    Call { server: String, reason: String },
    /// The operation did not finish within the configured `timeout_ms`.
    #[error("{operation} on mcp server {server} timed out after {}ms", timeout.as_millis())]
    Timeout {
        server: String,
        operation: String,
        timeout: Duration,
    },
}

impl McpError {
    /// Whether repeating the same operation could succeed. Argument and tool-name mistakes
    /// are deterministic, so retrying them only burns budget.
    pub fn is_retryable(&self) -> bool {
        match self {
            McpError::Connect { .. } | McpError::Call { .. } | McpError::Timeout { .. } => true,
            McpError::UnknownTool { .. } | McpError::InvalidArguments { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryability_follows_the_kind() {
        let s = || "srv".to_string();
        let retryable = [
            McpError::Connect {
                server: s(),
                reason: "x".into(),
            },
            McpError::Call {
                server: s(),
                reason: "x".into(),
            },
            McpError::Timeout {
                server: s(),
                operation: "tools/call".into(),
                timeout: Duration::from_millis(5),
            },
        ];
        for e in &retryable {
            assert!(e.is_retryable(), "{e}");
        }
        let permanent = [
            McpError::UnknownTool {
                server: s(),
                tool: "t".into(),
            },
            McpError::InvalidArguments {
                tool: "t".into(),
                reason: "x".into(),
            },
        ];
        for e in &permanent {
            assert!(!e.is_retryable(), "{e}");
        }
    }

    #[test]
    fn display_is_lowercase_fragment() {
        let e = McpError::Timeout {
            server: "srv".into(),
            operation: "tools/call".into(),
            timeout: Duration::from_millis(5),
        };
        assert_eq!(
            e.to_string(),
            "tools/call on mcp server srv timed out after 5ms"
        );
        let e = McpError::InvalidArguments {
            tool: "echo".into(),
            reason: "at /message: 1 is not of type \"string\"".into(),
        };
        assert!(e.to_string().starts_with("invalid arguments for tool echo"));
    }
}
