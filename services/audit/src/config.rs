//! The audit service's config: `[common]`, where its HTTP API listens, and how it checkpoints.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use quorum_runtime::config::{CommonConfig, ConfigError, Validate, duration};
use quorum_runtime::service::ServiceConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    pub common: CommonConfig,
    /// Where the auditors' API (`/v1/audit/export`) listens; port 0 picks a free one.
    pub http_addr: SocketAddr,
    pub chain: ChainConfig,
}

/// How the chainer reads and when it records the head as a `quorum.audit.checkpoint` event.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// Events linked per transaction.
    pub batch: i64,
    /// A checkpoint after this many events linked since the last one...
    pub checkpoint_every: u64,
    /// ...or after this long, if any event other than a checkpoint was linked since.
    #[serde(with = "duration")]
    pub checkpoint_interval: Duration,
    /// How long the chainer sleeps when it is caught up (it is also woken by every commit).
    #[serde(with = "duration")]
    pub idle_poll: Duration,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            batch: 2000,
            checkpoint_every: 10_000,
            checkpoint_interval: Duration::from_secs(10),
            idle_poll: Duration::from_millis(250),
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            common: CommonConfig::default(),
            http_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8081)),
            chain: ChainConfig::default(),
        }
    }
}

impl Validate for AuditConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate().map_err(|e| e.within("common"))?;
        if !(1..=50_000).contains(&self.chain.batch) {
            return Err(ConfigError::invalid("chain.batch", "between 1 and 50000"));
        }
        if self.chain.checkpoint_every == 0 {
            return Err(ConfigError::invalid("chain.checkpoint_every", "at least 1"));
        }
        if self.chain.checkpoint_interval.is_zero() || self.chain.idle_poll.is_zero() {
            return Err(ConfigError::invalid(
                "chain",
                "intervals must be above zero",
            ));
        }
        Ok(())
    }
}

impl ServiceConfig for AuditConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
