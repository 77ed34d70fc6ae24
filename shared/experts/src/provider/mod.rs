//! Providers: how an expert is asked, and how a failure is classified. Retries wrap the HTTP
//! providers (see `retry`); the breaker and the per-call timeout wrap every provider (handler).

pub mod anthropic;
pub mod openai;
pub mod retry;

use std::time::Duration;

use quorum_domain::expert::{ErrorClass, FinalAnswer, TokenUsage};

/// An answer and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// The whole reply: the text, or the JSON a structured reply was held to (after any text).
    pub answer: String,
    /// What the consensus compares, taken from `answer` by the most reliable means the provider
    /// allowed.
    pub final_answer: FinalAnswer,
    pub usage: Option<TokenUsage>,
}

/// A failed call, classified.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub class: ErrorClass,
    pub message: String,
    /// The server's `Retry-After`, on a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Worth another attempt: the connection failed, the server erred, or it asked us to slow
    /// down. A timeout is not retried (the expert's time is spent), nor is any other 4xx (the same
    /// request would be refused again).
    pub fn retryable(&self) -> bool {
        matches!(
            self.class,
            ErrorClass::Connect | ErrorClass::Server | ErrorClass::RateLimited
        )
    }
}

/// Classifies a non-success response.
pub(crate) async fn from_response(response: reqwest::Response) -> ProviderError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.text().await.unwrap_or_default();
    let body: String = body.chars().take(300).collect();
    let class = match status.as_u16() {
        429 => ErrorClass::RateLimited,
        500..=599 => ErrorClass::Server,
        _ => ErrorClass::Client,
    };
    ProviderError {
        class,
        message: format!("HTTP {status}: {body}"),
        retry_after,
    }
}

/// Classifies a transport error.
pub(crate) fn from_transport(e: reqwest::Error) -> ProviderError {
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else if e.is_connect() || e.is_request() {
        ErrorClass::Connect
    } else if e.is_decode() {
        ErrorClass::Malformed
    } else {
        ErrorClass::Server
    };
    // reqwest's own message ("error sending request for url …") says nothing of why; the causes
    // do (connection refused, an untrusted certificate), and an operator needs them.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    ProviderError::new(class, message)
}

/// The default of `structured_output`: every provider that can hold a reply to a schema is asked to.
pub(crate) fn yes() -> bool {
    true
}

/// The API key from the environment variable the config names, if any.
pub(crate) fn api_key(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|k| !k.is_empty())
}
