//! The embeddings client against a wire-level fake of an OpenAI-compatible `/embeddings` endpoint
//! (wiremock): one batched call, vectors in input order, retries, and replies that do not fit.

use std::time::Duration;

use quorum_domain::expert::ErrorClass;
use quorum_experts::provider::retry::RetryConfig;
use quorum_experts::{Embedder, EmbeddingsConfig};
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn embedder(server: &MockServer) -> Embedder {
    Embedder::new(EmbeddingsConfig {
        base_url: format!("{}/v1", server.uri()),
        model: "embed-test".into(),
        api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
        timeout: Duration::from_secs(20),
        retry: RetryConfig {
            max_retries: 2,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        threshold: 0.85,
    })
}

fn inputs() -> Vec<String> {
    vec![
        "Paris".into(),
        "The capital of France is Paris.".into(),
        "Lyon".into(),
    ]
}

/// The vectors of `inputs()`, listed by the server in the order `order` (of input indices).
fn embeddings(order: &[usize]) -> serde_json::Value {
    let data: Vec<_> = order
        .iter()
        .map(|&i| json!({"object": "embedding", "index": i, "embedding": [i as f32, 1.0]}))
        .collect();
    json!({"object": "list", "data": data, "model": "embed-test"})
}

#[tokio::test]
async fn one_batched_call_gives_the_vectors_in_input_order() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .and(body_json(json!({"model": "embed-test", "input": inputs()})))
        .respond_with(ResponseTemplate::new(200).set_body_json(embeddings(&[2, 0, 1])))
        .expect(1)
        .mount(&server)
        .await;
    let vectors = embedder(&server).embed(&inputs()).await.expect("vectors");
    assert_eq!(vectors, [[0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]);
    assert!(
        embedder(&server).embed(&[]).await.expect("none").is_empty(),
        "and no call"
    );
}

#[tokio::test]
async fn a_500_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(embeddings(&[0, 1, 2])))
        .expect(1)
        .mount(&server)
        .await;
    let vectors = embedder(&server)
        .embed(&inputs())
        .await
        .expect("on the retry");
    assert_eq!(vectors.len(), 3);
}

#[tokio::test]
async fn a_reply_that_does_not_fit_the_inputs_is_malformed_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(embeddings(&[0, 1])))
        .expect(1)
        .mount(&server)
        .await;
    let err = embedder(&server).embed(&inputs()).await.unwrap_err();
    assert_eq!(err.class, ErrorClass::Malformed);
    assert!(
        err.message.contains("2 embeddings for 3 inputs"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn a_slow_endpoint_times_out_and_repeated_failures_open_the_breaker() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(embeddings(&[0, 1, 2]))
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    let mut config = embedder(&server).config().clone();
    config.timeout = Duration::from_millis(200);
    let e = Embedder::new(config);
    for _ in 0..5 {
        assert_eq!(
            e.embed(&inputs()).await.unwrap_err().class,
            ErrorClass::Timeout
        );
    }
    assert_eq!(e.breaker().state(), "open");
    assert_eq!(
        e.embed(&inputs()).await.unwrap_err().class,
        ErrorClass::CircuitOpen
    );
}
