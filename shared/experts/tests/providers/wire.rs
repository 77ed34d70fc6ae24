//! Each way a provider's HTTP call can go, classified and retried or not as documented; the
//! breaker and the rate limit in front of it.

use std::time::Duration;

use quorum_domain::expert::{ErrorClass, Extraction};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{anthropic, completion, openai, panel};

#[tokio::test]
async fn openai_answers_are_read_with_their_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("Paris")))
        .expect(1)
        .mount(&server)
        .await;
    let e = openai(&format!("{}/v1", server.uri()));
    let (reply, attempts) = panel(vec![e.clone()]).ask(&e, "capital?").await;
    let reply = reply.expect("an answer");
    assert_eq!(reply.answer, "Paris");
    assert_eq!(
        (
            reply.final_answer.text.as_str(),
            reply.final_answer.extraction
        ),
        ("Paris", Extraction::WholeText)
    );
    assert_eq!(reply.usage.map(|u| (u.prompt, u.completion)), Some((7, 3)));
    assert_eq!(attempts, 1);
}

#[tokio::test]
async fn a_429_is_retried_after_its_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("Paris")))
        .mount(&server)
        .await;
    let e = openai(&server.uri());
    let started = std::time::Instant::now();
    let (reply, attempts) = panel(vec![e.clone()]).ask(&e, "q").await;
    assert_eq!(reply.expect("answered on the retry").answer, "Paris");
    assert_eq!(attempts, 2);
    // The server's Retry-After (1 s), not the 10-50 ms backoff, set the pause.
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_500_is_retried_until_the_retries_run_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .expect(3)
        .mount(&server)
        .await;
    let e = openai(&server.uri());
    let (reply, attempts) = panel(vec![e.clone()]).ask(&e, "q").await;
    let err = reply.unwrap_err();
    assert_eq!((err.class, attempts), (ErrorClass::Server, 3));
    assert!(err.message.contains("boom"));
}

#[tokio::test]
async fn other_4xx_and_malformed_answers_are_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(401).set_body_string("bad key"))
        .expect(1)
        .mount(&server)
        .await;
    let e = openai(&server.uri());
    let (reply, attempts) = panel(vec![e.clone()]).ask(&e, "q").await;
    assert_eq!(
        (reply.unwrap_err().class, attempts),
        (ErrorClass::Client, 1)
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .expect(1)
        .mount(&server)
        .await;
    let e = openai(&server.uri());
    let (reply, attempts) = panel(vec![e.clone()]).ask(&e, "q").await;
    assert_eq!(
        (reply.unwrap_err().class, attempts),
        (ErrorClass::Malformed, 1)
    );
}

#[tokio::test]
async fn a_slow_expert_times_out_and_a_missing_one_is_a_connect_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("late"))
                .set_delay(Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    let mut e = openai(&server.uri());
    e.timeout = Duration::from_millis(300);
    let (reply, _) = panel(vec![e.clone()]).ask(&e, "q").await;
    assert_eq!(reply.unwrap_err().class, ErrorClass::Timeout);

    let port = quorum_devstack::free_port().expect("a port");
    let e = openai(&format!("http://127.0.0.1:{port}"));
    let (reply, attempts) = panel(vec![e.clone()]).ask(&e, "q").await;
    assert_eq!(
        (reply.unwrap_err().class, attempts),
        (ErrorClass::Connect, 3)
    );
}

#[tokio::test]
async fn anthropic_messages_are_read_and_its_overload_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(529).set_body_string("overloaded"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "content": [{"type": "text", "text": "Paris"}],
            "usage": {"input_tokens": 5, "output_tokens": 1}
        })))
        .mount(&server)
        .await;
    let e = anthropic(&server.uri());
    let (reply, attempts) = panel(vec![e.clone()]).ask(&e, "q").await;
    let reply = reply.expect("answered on the retry");
    assert_eq!((reply.answer.as_str(), attempts), ("Paris", 2));
    assert_eq!(reply.usage.map(|u| u.prompt), Some(5));
}

#[tokio::test]
async fn the_breaker_opens_on_repeated_failures_and_then_asks_no_one() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400))
        .expect(2)
        .mount(&server)
        .await;
    let mut e = openai(&server.uri());
    e.breaker.failures = 2;
    let f = panel(vec![e.clone()]);
    for _ in 0..2 {
        assert_eq!(
            f.ask(&e, "q").await.0.unwrap_err().class,
            ErrorClass::Client
        );
    }
    assert_eq!(f.breakers["e"].state(), "open");
    // Open: refused at once, and the server is not asked a third time (`expect(2)`).
    let (reply, attempts) = f.ask(&e, "q").await;
    assert_eq!(
        (reply.unwrap_err().class, attempts),
        (ErrorClass::CircuitOpen, 0)
    );
}

#[tokio::test]
async fn calls_wait_for_the_experts_rate() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion("ok")))
        .expect(6)
        .mount(&server)
        .await;
    let mut e = openai(&server.uri());
    e.rate_per_second = Some(4);
    let f = panel(vec![e.clone()]);
    let started = std::time::Instant::now();
    let calls = (0..6).map(|_| f.ask(&e, "q"));
    for (reply, _) in futures::future::join_all(calls).await {
        reply.expect("answered");
    }
    // Six calls at four a second (a burst of four): the last two wait for tokens, 250 ms apart.
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}
