//! An OpenAI-compatible embeddings client (`POST {base_url}/embeddings`), behind the same breaker,
//! timeout and retries as an expert, and the cosine similarity its vectors are compared by.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use quorum_config::{ConfigError, Validate, duration};
use quorum_domain::expert::ErrorClass;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::breaker::Breaker;
use crate::provider::retry::{RetryConfig, with_retries};
use crate::provider::{ProviderError, api_key, from_response, from_transport};

/// Where answers are embedded, and how alike two must be to count as one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsConfig {
    /// Up to the version segment, as for `openai` experts: `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// The embedding model: vectors of different models are not comparable.
    pub model: String,
    /// The environment variable holding the API key (none is sent when it is unset).
    #[serde(default = "default_key_env")]
    pub api_key_env: String,
    /// How long one `embed` may take, retries included.
    #[serde(default = "ten_seconds", with = "duration")]
    pub timeout: Duration,
    /// Retries on connect errors, 5xx and 429 only.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Cosine similarity at or above which two answers are taken as the same.
    #[serde(default = "default_threshold")]
    pub threshold: f64,
}

fn default_key_env() -> String {
    "OPENAI_API_KEY".into()
}

fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

fn default_threshold() -> f64 {
    0.85
}

impl Validate for EmbeddingsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let url = reqwest::Url::parse(&self.base_url);
        if !url.is_ok_and(|u| matches!(u.scheme(), "http" | "https")) {
            return Err(ConfigError::invalid("base_url", "an http or https URL"));
        }
        if self.model.is_empty() {
            return Err(ConfigError::invalid("model", "a model name"));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(ConfigError::invalid("threshold", "above 0 and at most 1"));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::invalid("timeout", "above zero"));
        }
        Ok(())
    }
}

/// Embeds texts through one endpoint; one breaker for every call, since they all share it.
pub struct Embedder {
    config: EmbeddingsConfig,
    http: reqwest::Client,
    breaker: Breaker,
}

impl Embedder {
    /// An embedder with a closed breaker (the defaults of an expert's).
    pub fn new(config: EmbeddingsConfig) -> Self {
        Self {
            config,
            http: quorum_http_client::client(),
            breaker: Breaker::new("embeddings", Default::default()),
        }
    }

    /// The config it was made with: its `threshold` is what callers compare `cosine` against.
    pub fn config(&self) -> &EmbeddingsConfig {
        &self.config
    }

    /// The endpoint's breaker, for status reports.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// One POST {base_url}/embeddings with every input; vectors in input order.
    pub async fn embed(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        // Servers refuse an empty `input`; and returning before `acquire` keeps a half-open
        // breaker from waiting on a trial that never reports.
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        if self.breaker.acquire().is_err() {
            return Err(ProviderError::new(
                ErrorClass::CircuitOpen,
                "the circuit breaker is open after repeated failures; not asked",
            ));
        }
        let attempts = AtomicU32::new(0);
        let call = with_retries(&self.config.retry, &attempts, || self.call(inputs));
        let outcome = tokio::time::timeout(self.config.timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(ProviderError::new(
                    ErrorClass::Timeout,
                    format!("no embeddings within {:?}", self.config.timeout),
                ))
            });
        self.breaker.record(outcome.is_ok());
        outcome
    }

    async fn call(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let url = format!("{}/embeddings", self.config.base_url.trim_end_matches('/'));
        let mut request = self.http.post(url).json(&json!({
            "model": self.config.model,
            "input": inputs,
        }));
        if let Some(key) = api_key(&self.config.api_key_env) {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(from_transport)?;
        if !response.status().is_success() {
            return Err(from_response(response).await);
        }
        let body: EmbeddingList = response.json().await.map_err(|e| {
            ProviderError::new(ErrorClass::Malformed, format!("unreadable embeddings: {e}"))
        })?;
        in_input_order(body.data, inputs.len())
    }
}

/// The vectors by their `index`, one per input and all of one dimension: vectors of different
/// models or a short list must not be compared as if they matched the inputs.
fn in_input_order(data: Vec<Embedding>, inputs: usize) -> Result<Vec<Vec<f32>>, ProviderError> {
    let malformed = |message: String| ProviderError::new(ErrorClass::Malformed, message);
    if data.len() != inputs {
        return Err(malformed(format!(
            "{} embeddings for {inputs} inputs",
            data.len()
        )));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for (position, e) in data.into_iter().enumerate() {
        // Some compatible servers leave `index` out and list the vectors in input order.
        let i = e.index.unwrap_or(position);
        match slots.get_mut(i) {
            Some(slot @ None) => *slot = Some(e.embedding),
            Some(Some(_)) => return Err(malformed(format!("embedding {i} given twice"))),
            None => return Err(malformed(format!("embedding index {i} out of range"))),
        }
    }
    // Equal counts and no index given twice or out of range: every slot is filled.
    let vectors: Vec<Vec<f32>> = slots.into_iter().flatten().collect();
    let dimensions = vectors.first().map_or(0, Vec::len);
    if vectors
        .iter()
        .any(|v| v.is_empty() || v.len() != dimensions)
    {
        return Err(malformed(
            "embeddings of different or zero dimensions".into(),
        ));
    }
    Ok(vectors)
}

#[derive(Deserialize)]
struct EmbeddingList {
    data: Vec<Embedding>,
}

#[derive(Deserialize)]
struct Embedding {
    index: Option<usize>,
    embedding: Vec<f32>,
}

/// The cosine of the angle between `a` and `b`, in [-1, 1]; 0 when they cannot be compared (of
/// different lengths, empty, or one of them zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (mut dot, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    let c = dot / (aa.sqrt() * bb.sqrt());
    // Rounding can carry identical vectors just past 1; a zero vector gives NaN.
    if c.is_finite() {
        c.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmbeddingsConfig {
        serde_json::from_value(json!({"base_url": "http://127.0.0.1:11434/v1", "model": "m"}))
            .expect("a config with its defaults")
    }

    #[test]
    fn cosine_of_same_opposite_orthogonal_and_incomparable_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-9);
        assert!((cosine(&[1.0, 0.0], &[-1.0, 0.0]) + 1.0).abs() < 1e-9);
        assert!(cosine(&[1.0, 0.0], &[0.0, 3.0]).abs() < 1e-9);
        assert!((cosine(&[1.0, 1.0], &[1.0, 0.0]) - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(
            cosine(&[1.0, 0.0], &[1.0, 0.0, 0.0]),
            0.0,
            "mismatched lengths"
        );
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0, "a zero vector");
        assert_eq!(cosine(&[], &[]), 0.0);
    }

    #[test]
    fn defaults_and_validation() {
        let c = config();
        assert_eq!(
            (c.api_key_env.as_str(), c.timeout, c.threshold),
            ("OPENAI_API_KEY", Duration::from_secs(10), 0.85)
        );
        c.validate().expect("valid");
        let invalid = |change: fn(&mut EmbeddingsConfig)| {
            let mut c = config();
            change(&mut c);
            c.validate().unwrap_err().key().map(str::to_owned)
        };
        assert_eq!(invalid(|c| c.base_url.clear()).as_deref(), Some("base_url"));
        assert_eq!(
            invalid(|c| c.base_url = "127.0.0.1:11434/v1".into()).as_deref(),
            Some("base_url")
        );
        assert_eq!(invalid(|c| c.threshold = 0.0).as_deref(), Some("threshold"));
        assert_eq!(invalid(|c| c.threshold = 1.5).as_deref(), Some("threshold"));
        assert_eq!(
            invalid(|c| c.threshold = f64::NAN).as_deref(),
            Some("threshold")
        );
        assert_eq!(
            invalid(|c| c.timeout = Duration::ZERO).as_deref(),
            Some("timeout")
        );
    }

    #[test]
    fn vectors_are_put_in_input_order_and_checked() {
        let e = |index, embedding: &[f32]| Embedding {
            index,
            embedding: embedding.to_vec(),
        };
        let ordered = in_input_order(vec![e(Some(1), &[1.0]), e(Some(0), &[0.0])], 2).unwrap();
        assert_eq!(ordered, [vec![0.0], vec![1.0]]);
        let unindexed = in_input_order(vec![e(None, &[1.0]), e(None, &[2.0])], 2).unwrap();
        assert_eq!(unindexed, [vec![1.0], vec![2.0]]);
        for bad in [
            in_input_order(vec![e(Some(0), &[1.0]), e(Some(0), &[2.0])], 2),
            in_input_order(vec![e(Some(0), &[1.0]), e(Some(2), &[2.0])], 2),
            in_input_order(vec![e(Some(0), &[1.0]), e(Some(1), &[2.0, 3.0])], 2),
            in_input_order(vec![e(Some(0), &[])], 1),
        ] {
            assert_eq!(bad.unwrap_err().class, ErrorClass::Malformed);
        }
    }
}
