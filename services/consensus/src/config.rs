//! The service's config: `[common]`, and the names of the configured experts (a query that names
//! none is asked of them all, so consensus must know how many that is).

use quorum_experts::ExpertConfig;
use quorum_experts::embeddings::EmbeddingsConfig;
use quorum_runtime::config::{CommonConfig, ConfigError, Validate};
use quorum_runtime::service::ServiceConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsensusConfig {
    pub common: CommonConfig,
    pub experts: Vec<String>,
    /// The expert a `judge` query asks which answers mean the same and to merge them (`[judge]`,
    /// an expert's settings).
    pub judge: Option<ExpertConfig>,
    /// The OpenAI-compatible embeddings endpoint a `similarity` query compares answers with
    /// (`[embeddings]`: `base_url`, `model`, `threshold`).
    pub embeddings: Option<EmbeddingsConfig>,
}

impl ConsensusConfig {
    /// The semantic methods configured.
    pub fn methods(&self) -> crate::Methods {
        crate::Methods {
            judge: self.judge.clone(),
            embeddings: self.embeddings.clone(),
        }
    }
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            common: CommonConfig::default(),
            experts: ["alpha", "beta", "gamma"].map(String::from).to_vec(),
            judge: None,
            embeddings: None,
        }
    }
}

impl Validate for ConsensusConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.common.validate().map_err(|e| e.within("common"))?;
        if self.experts.is_empty() {
            return Err(ConfigError::invalid("experts", "name at least one expert"));
        }
        if let Some(e) = &self.embeddings {
            e.validate().map_err(|e| e.within("embeddings"))?;
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
