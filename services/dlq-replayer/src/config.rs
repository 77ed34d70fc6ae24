//! The dlq-replayer's config: `[common]`, where its API listens, how often the pump looks for work.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use quorum_runtime::config::{CommonConfig, ConfigError, Validate, duration};
use quorum_runtime::service::ServiceConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DlqConfig {
    pub common: CommonConfig,
    /// Where the operators' API (`/v1/dead-letters`, `/v1/replays`) listens; port 0 picks one.
    pub http_addr: SocketAddr,
    /// How often the pump looks for letters to replay when it has none.
    #[serde(with = "duration")]
    pub pump_poll: Duration,
}

impl Default for DlqConfig {
    fn default() -> Self {
        Self {
            common: CommonConfig::default(),
            http_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8082)),
            pump_poll: Duration::from_millis(250),
        }
    }
}

impl Validate for DlqConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate().map_err(|e| e.within("common"))?;
        if self.pump_poll.is_zero() {
            return Err(ConfigError::invalid("pump_poll", "must be above zero"));
        }
        Ok(())
    }
}

impl ServiceConfig for DlqConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
