//! Configuration of one MCP server, as it appears in Quorum's service configuration.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Used when `timeout_ms` is absent: long enough for slow tools, short enough that a hung
/// server does not stall a pipeline step indefinitely.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// How to reach one MCP server, plus the bound applied to every operation on it.
///
/// One flat table tagged by `transport`, e.g.
/// `{ "transport": "stdio", "command": "node", "args": [...], "timeout_ms": 5000 }`.
/// `timeout_ms` lives in each variant (rather than in a wrapper with `#[serde(flatten)]`)
/// because serde cannot combine `flatten` with `deny_unknown_fields`, and typos in
/// configuration must be rejected, not ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "transport", rename_all = "lowercase", deny_unknown_fields)]
pub enum ServerConfig {
    /// Spawn the server as a child process and speak JSON-RPC over its stdin/stdout.
    Stdio {
        /// Absolute path, or a program name resolved through `PATH`.
        command: String,
        #[serde(default)]
        args: Vec<String>,
        /// Names of variables passed through from this process's environment, when set there.
        /// The server starts with an empty environment plus these and `env_set`: never the
        /// service's own (database URL, provider keys) unless named here.
        #[serde(default, deserialize_with = "env_names")]
        env: Vec<String>,
        /// Variables set for the server, by name and value.
        #[serde(default)]
        env_set: BTreeMap<String, String>,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// Streamable HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp`.
    Http {
        url: String,
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
}

impl ServerConfig {
    /// A stdio server with no extra environment and the default timeout.
    pub fn stdio(
        command: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        ServerConfig::Stdio {
            command: command.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            env_set: BTreeMap::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// Passes `names` through from this process's environment (stdio only; no effect on HTTP).
    pub fn with_env(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        if let ServerConfig::Stdio { env, .. } = &mut self {
            env.extend(names.into_iter().map(Into::into));
        }
        self
    }

    /// Sets `name` to `value` for the server (stdio only; no effect on HTTP).
    pub fn with_env_set(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let ServerConfig::Stdio { env_set, .. } = &mut self {
            env_set.insert(name.into(), value.into());
        }
        self
    }

    /// A streamable HTTP server with the default timeout.
    pub fn http(url: impl Into<String>) -> Self {
        ServerConfig::Http {
            url: url.into(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// Replaces the timeout, keeping everything else.
    pub fn with_timeout_ms(mut self, ms: u64) -> Self {
        match &mut self {
            ServerConfig::Stdio { timeout_ms, .. } | ServerConfig::Http { timeout_ms, .. } => {
                *timeout_ms = ms
            }
        }
        self
    }

    /// The bound applied to connecting, listing tools and each tool call.
    pub fn timeout(&self) -> Duration {
        match self {
            ServerConfig::Stdio { timeout_ms, .. } | ServerConfig::Http { timeout_ms, .. } => {
                Duration::from_millis(*timeout_ms)
            }
        }
    }
}

/// `env` is a list of names. It once was a table of values added to the inherited environment;
/// such a table now says where its values go instead of a bare type error.
fn env_names<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Names(Vec<String>),
        Table(#[allow(dead_code)] BTreeMap<String, String>),
    }
    match Either::deserialize(de)? {
        Either::Names(names) => Ok(names),
        Either::Table(_) => Err(serde::de::Error::custom(
            "env is a list of variable names passed through from the service's environment; \
             set values with env_set = { NAME = \"value\" }",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stdio_parses_with_default_timeout() {
        let cfg: ServerConfig = serde_json::from_value(json!({
            "transport": "stdio",
            "command": "python3",
            "args": ["-m", "mcp_server_time"],
            "env": ["PATH"],
            "env_set": {"TZ": "UTC"}
        }))
        .unwrap();
        assert_eq!(cfg.timeout(), Duration::from_millis(DEFAULT_TIMEOUT_MS));
        let ServerConfig::Stdio {
            command,
            args,
            env,
            env_set,
            ..
        } = cfg
        else {
            panic!("expected stdio");
        };
        assert_eq!(command, "python3");
        assert_eq!(args, ["-m", "mcp_server_time"]);
        assert_eq!(env, ["PATH"]);
        assert_eq!(env_set.get("TZ").map(String::as_str), Some("UTC"));
    }

    #[test]
    fn env_as_a_table_of_values_says_where_values_go() {
        let err = serde_json::from_value::<ServerConfig>(json!({
            "transport": "stdio", "command": "node", "env": {"TZ": "UTC"}
        }))
        .unwrap_err()
        .to_string();
        assert!(err.contains("env_set"), "{err}");
    }

    #[test]
    fn http_parses_with_explicit_timeout() {
        let cfg: ServerConfig = serde_json::from_value(json!({
            "transport": "http", "url": "http://127.0.0.1:1/mcp", "timeout_ms": 5
        }))
        .unwrap();
        assert_eq!(
            cfg,
            ServerConfig::http("http://127.0.0.1:1/mcp").with_timeout_ms(5)
        );
    }

    #[test]
    fn unknown_fields_and_transports_are_rejected() {
        for bad in [
            json!({"transport": "http", "url": "http://x/mcp", "colour": "red"}),
            json!({"transport": "http", "url": "http://x/mcp", "command": "node"}),
            json!({"transport": "stdio", "command": "node", "timeout": 5}),
            json!({"transport": "sse", "url": "http://x/sse"}),
            json!({"url": "http://x/mcp"}),
        ] {
            assert!(
                serde_json::from_value::<ServerConfig>(bad.clone()).is_err(),
                "{bad} was accepted"
            );
        }
    }
}
