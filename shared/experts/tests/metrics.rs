//! What the experts report to an on-call engineer: each call's duration by outcome, the tokens
//! the providers reported, and each breaker's state.

use std::time::Duration;

use quorum_experts::breaker::BreakerConfig;
use quorum_experts::provider::openai::OpenAiConfig;
use quorum_experts::provider::retry::RetryConfig;
use quorum_experts::{ExpertConfig, Panel, ProviderConfig};
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn openai(name: &str, base_url: &str) -> ExpertConfig {
    ExpertConfig {
        name: name.into(),
        provider: ProviderConfig::Openai(OpenAiConfig {
            base_url: base_url.into(),
            model: "gpt-test".into(),
            api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
            structured_output: false,
            max_tokens: None,
        }),
        weight: 1.0,
        timeout: Duration::from_secs(20),
        breaker: BreakerConfig {
            failures: 1,
            cool_down: Duration::from_secs(600),
        },
        retry: RetryConfig {
            max_retries: 0,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        rate_per_second: None,
        concurrency: 8,
    }
}

#[tokio::test]
async fn calls_tokens_and_breaker_states_are_reported() {
    let metrics = quorum_runtime::metrics::install_recorder();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "choices": [{"message": {"role": "assistant", "content": "Paris"}}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3}
        })))
        .mount(&server)
        .await;
    // A port nothing listens on: a connect error, which opens a one-failure breaker.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down_url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let up = openai("up", &format!("{}/v1", server.uri()));
    let down = openai("down", &down_url);
    let panel = Panel::new(vec![up.clone(), down.clone()]);
    assert!(panel.ask(&up, "capital?").await.0.is_ok());
    assert!(panel.ask(&down, "capital?").await.0.is_err());
    let (refused, attempts) = panel.ask(&down, "capital?").await;
    assert_eq!(
        (refused.is_err(), attempts),
        (true, 0),
        "the breaker is open"
    );

    let text = metrics.render();
    let value = |parts: &[&str]| -> Option<f64> {
        text.lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))?
            .rsplit(' ')
            .next()?
            .parse()
            .ok()
    };
    let count = |expert: &str, outcome: &str| {
        value(&[
            "quorum_expert_call_duration_seconds_count{",
            &format!(r#"expert="{expert}""#),
            &format!(r#"outcome="{outcome}""#),
        ])
    };
    assert_eq!(count("up", "ok"), Some(1.0), "{text}");
    assert_eq!(count("down", "connect"), Some(1.0), "{text}");
    assert_eq!(count("down", "circuit_open"), Some(1.0), "{text}");
    let tokens = |kind: &str| {
        value(&[
            "quorum_expert_tokens_total{",
            r#"expert="up""#,
            &format!(r#"kind="{kind}""#),
        ])
    };
    assert_eq!(
        (tokens("prompt"), tokens("completion")),
        (Some(7.0), Some(3.0)),
        "{text}"
    );
    let state = |expert: &str| value(&[&format!(r#"quorum_breaker_state{{expert="{expert}"}}"#)]);
    assert_eq!(
        (state("up"), state("down")),
        (Some(0.0), Some(2.0)),
        "{text}"
    );
}
