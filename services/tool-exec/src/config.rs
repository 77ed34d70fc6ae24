//! The tool-exec service's config: `[common]`, the tools (`[http]`, `[exec]`, `[mcp.<server>]`), the
//! tool policy per tenant, and how its consumer waits.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use quorum_runtime::config::{CommonConfig, ConfigError, Validate, duration};
use quorum_runtime::service::ServiceConfig;
use quorum_saga::ToolPolicy;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolExecConfig {
    pub common: CommonConfig,
    /// Where each saga gets its working directory (`<root>/<saga id>`), for `exec` steps.
    pub workdir_root: PathBuf,
    pub http: HttpToolConfig,
    /// The `exec` tool's sandbox.
    pub exec: quorum_sandbox::Policy,
    /// `exec` steps at once.
    pub exec_concurrency: usize,
    /// MCP servers by name (`[tool_exec.mcp.<name>]`): their tools are `mcp:<name>/<tool>`.
    pub mcp: BTreeMap<String, quorum_mcp::ServerConfig>,
    /// MCP calls at once.
    pub mcp_concurrency: usize,
    /// The tool policy of a tenant without one of its own.
    pub default_policy: ToolPolicy,
    /// Tool policies by tenant.
    pub tenants: BTreeMap<String, ToolPolicy>,
    /// How long JetStream waits for a saga's message before giving it to another replica; a
    /// running saga keeps it alive with in-progress acks, so this bounds how soon a crashed
    /// replica's sagas resume elsewhere.
    #[serde(with = "duration")]
    pub ack_wait: Duration,
    /// Sagas driven at once.
    pub concurrency: usize,
}

/// The `http` tool.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpToolConfig {
    /// Hosts a step may call (`host:port`, or `host` for the scheme's default port); nothing
    /// else is ever contacted. A hostname here reaches public addresses only: one resolving to
    /// loopback, a private or link-local network or a metadata service is refused, on every
    /// connection. An address literal (`10.0.0.5:8080`) is taken as written.
    pub allowed_hosts: Vec<String>,
    /// Hosts (same form) a step may call at whatever address they resolve to, private ones
    /// included: internal services the operator names explicitly.
    pub private_hosts: Vec<String>,
    /// Bytes of a response body read and recorded in the step's event; the rest is not read.
    pub max_response_bytes: usize,
    /// Calls at once.
    pub concurrency: usize,
}

impl Default for HttpToolConfig {
    fn default() -> Self {
        Self {
            allowed_hosts: Vec::new(),
            private_hosts: Vec::new(),
            max_response_bytes: 64 * 1024,
            concurrency: 32,
        }
    }
}

impl Default for ToolExecConfig {
    fn default() -> Self {
        Self {
            common: CommonConfig::default(),
            workdir_root: std::env::temp_dir().join("quorum-sagas"),
            http: HttpToolConfig::default(),
            exec: quorum_sandbox::Policy::default(),
            exec_concurrency: 4,
            mcp: BTreeMap::new(),
            mcp_concurrency: 8,
            default_policy: ToolPolicy {
                allowed_tools: Vec::new(),
                max_steps: 16,
                allow_from_consensus: false,
            },
            tenants: BTreeMap::new(),
            ack_wait: Duration::from_secs(30),
            concurrency: 16,
        }
    }
}

impl ToolExecConfig {
    /// The policy of `tenant`.
    pub fn policy(&self, tenant: &str) -> &ToolPolicy {
        self.tenants.get(tenant).unwrap_or(&self.default_policy)
    }
}

impl Validate for ToolExecConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate().map_err(|e| e.within("common"))?;
        if self.concurrency == 0
            || self.http.concurrency == 0
            || self.exec_concurrency == 0
            || self.mcp_concurrency == 0
        {
            return Err(ConfigError::invalid("concurrency", "at least 1"));
        }
        if self.ack_wait < Duration::from_secs(1) {
            return Err(ConfigError::invalid("ack_wait", "at least 1s"));
        }
        for (key, list) in [
            ("http.allowed_hosts", &self.http.allowed_hosts),
            ("http.private_hosts", &self.http.private_hosts),
        ] {
            for entry in list {
                crate::tools::http_guard::HostPort::parse(entry)
                    .map_err(|e| ConfigError::invalid(key, e))?;
            }
        }
        if let Some(p) = self.exec.allowed_programs.iter().find(|p| !p.is_absolute()) {
            return Err(ConfigError::invalid(
                "exec.allowed_programs",
                format!("{} is not an absolute path", p.display()),
            ));
        }
        Ok(())
    }
}

impl ServiceConfig for ToolExecConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
