//! The experts a deployment asks, from the config file (`[[experts]]`).

use quorum_experts::{ExpertConfig, default_experts, validate_experts};
use quorum_runtime::config::ConfigError;
use serde::{Deserialize, Serialize};

/// The service's config: `[common]` and `[[experts]]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct FanoutConfig {
    pub common: quorum_runtime::config::CommonConfig,
    pub experts: Vec<ExpertConfig>,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            common: Default::default(),
            experts: default_experts(),
        }
    }
}

impl quorum_runtime::config::Validate for FanoutConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate().map_err(|e| e.within("common"))?;
        validate_experts(&self.experts)
    }
}

impl quorum_runtime::service::ServiceConfig for FanoutConfig {
    fn common(&self) -> &quorum_runtime::config::CommonConfig {
        &self.common
    }
}
