//! The service's config: `[common]`, and the names of the configured experts (a query that names
//! none is asked of them all, so consensus must know how many that is).

use quorum_experts::ExpertConfig;
use quorum_runtime::config::{CommonConfig, ConfigError, Validate};
use quorum_runtime::service::ServiceConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsensusConfig {
    pub common: CommonConfig,
    pub experts: Vec<String>,
    /// The expert a `judge` query asks to merge the answers (`[judge]`, an expert's settings).
    pub judge: Option<ExpertConfig>,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            common: CommonConfig::default(),
            experts: ["alpha", "beta", "gamma"].map(String::from).to_vec(),
            judge: None,
        }
    }
}

impl Validate for ConsensusConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate().map_err(|e| e.within("common"))?;
        if self.experts.is_empty() {
            return Err(ConfigError::invalid("experts", "name at least one expert"));
        }
        match &self.judge {
            Some(judge) => quorum_experts::validate_experts(std::slice::from_ref(judge))
                .map_err(|e| e.within("judge")),
            None => Ok(()),
        }
    }
}

impl ServiceConfig for ConsensusConfig {
    fn common(&self) -> &CommonConfig {
        &self.common
    }
}
