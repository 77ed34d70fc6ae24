//! `quorum up`'s typed config: defaults, then `--config <file.toml>`, then `QUORUM__…` variables,
//! then command-line flags; validated before anything starts.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use quorum_audit::config::AuditConfig;
use quorum_dlq_replayer::config::DlqConfig;
use quorum_experts::ExpertConfig;
use quorum_experts::embeddings::EmbeddingsConfig;
use quorum_ingest::IngestConfig;
use quorum_relay::RelayConfig;
use quorum_runtime::config::{ConfigError, Validate, duration};
use quorum_tool_exec::config::ToolExecConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct UpConfig {
    /// Where the admin server (/livez, /readyz, /metrics) listens; port 0 picks a free one.
    pub admin_addr: SocketAddr,
    /// How long Ctrl-C waits for in-flight work.
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    pub relay: RelayConfig,
    /// The ingest service (`[ingest]`); its URLs are the stack's, and `up` runs the relay itself.
    pub ingest: IngestConfig,
    /// The experts (`[[experts]]`); three scripted ones by default, so a query is answered with no
    /// model at hand.
    pub experts: Vec<ExpertConfig>,
    /// The expert that decides which answers of a `judge` query mean the same and merges them
    /// (`[judge]`); without one, the offline rules group and the plainest answer stands, and the
    /// consensus says so.
    pub judge: Option<ExpertConfig>,
    /// The OpenAI-compatible embeddings endpoint `similarity` queries compare answers with
    /// (`[embeddings]`: `base_url`, `model`, `threshold`); without one, the offline rules alone.
    pub embeddings: Option<EmbeddingsConfig>,
    /// The audit service (`[audit]`): its API address and how the chain checkpoints.
    pub audit: AuditConfig,
    /// The dead-letter replayer (`[dlq]`): its API address.
    pub dlq: DlqConfig,
    /// Tool execution (`[tool_exec]`): the tools, their sandbox and the tenants' tool policies.
    pub tool_exec: ToolExecConfig,
}

impl Default for UpConfig {
    fn default() -> Self {
        Self {
            admin_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            shutdown_grace: Duration::from_secs(30),
            relay: RelayConfig::default(),
            ingest: IngestConfig::default(),
            experts: quorum_experts::default_experts(),
            judge: None,
            embeddings: None,
            audit: AuditConfig::default(),
            dlq: DlqConfig::default(),
            tool_exec: ToolExecConfig::default(),
        }
    }
}

impl Validate for UpConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.relay.validate().map_err(|e| e.within("relay"))?;
        self.ingest.validate().map_err(|e| e.within("ingest"))?;
        self.audit.validate().map_err(|e| e.within("audit"))?;
        self.dlq.validate().map_err(|e| e.within("dlq"))?;
        self.tool_exec
            .validate()
            .map_err(|e| e.within("tool_exec"))?;
        if let Some(e) = &self.embeddings {
            e.validate().map_err(|e| e.within("embeddings"))?;
        }
        if let Some(judge) = &self.judge {
            quorum_experts::validate_experts(std::slice::from_ref(judge))
                .map_err(|e| e.within("judge"))?;
        }
        quorum_experts::validate_experts(&self.experts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_loads_and_validates() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/quorum.example.toml");
        let config: UpConfig =
            quorum_runtime::config::load_validated(Some(&path)).expect("the example is valid");
        let names: Vec<&str> = config.experts.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["alpha", "beta", "gamma"]);
        assert_eq!(config.judge.map(|j| j.name).as_deref(), Some("judge"));
        assert_eq!(config.ingest.flow.group_alone_from, 50);
        assert_eq!(config.audit.chain.checkpoint_every, 10_000);
        assert_eq!(config.dlq.http_addr.port(), 8082);
        assert_eq!(config.tool_exec.policy("acme").max_steps, 4);
        assert_eq!(config.tool_exec.exec.limits.processes, 64);
    }
}
