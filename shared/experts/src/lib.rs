//! Experts: how each configured expert is reached (`openai`, `anthropic`, `scripted`), how a
//! failure is classified, and the layers every call goes through (breaker, timeout, retries, rate
//! and concurrency limits; see `panel`). Shared by the fan-out, which asks the experts, and the
//! consensus service, which asks a judge to merge their answers and embeds them to compare them.

pub mod breaker;
pub mod config;
pub mod embeddings;
pub mod panel;
pub mod provider;
pub mod scripted;

pub use config::{ExpertConfig, ProviderConfig, default_experts, validate_experts};
pub use embeddings::{Embedder, EmbeddingsConfig, cosine};
pub use panel::Panel;
pub use provider::{ProviderError, Reply};
