//! The OpenAI and Anthropic providers against wire-level fakes of their HTTP APIs (wiremock):
//! success, 429 with Retry-After, 500, a timeout, malformed JSON, a refused request, and no server
//! at all; each classified, and retried or not, as documented. And the final answer: asked for by
//! schema or forced tool call, read from it, and read from the text when a server answers in prose.

use std::time::Duration;

use quorum_domain::expert::{ANSWER_INSTRUCTIONS, ErrorClass, Extraction, answer_schema};
use quorum_experts::provider::anthropic::AnthropicConfig;
use quorum_experts::provider::openai::OpenAiConfig;
use quorum_experts::provider::retry::RetryConfig;
use quorum_experts::{ExpertConfig, Panel, ProviderConfig};
use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn openai(base_url: &str) -> ExpertConfig {
    expert(ProviderConfig::Openai(OpenAiConfig {
        base_url: base_url.into(),
        model: "gpt-test".into(),
        api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
        structured_output: true,
        max_tokens: None,
    }))
}

fn anthropic(base_url: &str) -> ExpertConfig {
    expert(ProviderConfig::Anthropic(AnthropicConfig {
        base_url: base_url.into(),
        model: "claude-test".into(),
        api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
        max_tokens: 64,
        structured_output: true,
    }))
}

fn expert(provider: ProviderConfig) -> ExpertConfig {
    ExpertConfig {
        name: "e".into(),
        provider,
        weight: 1.0,
        timeout: Duration::from_secs(20),
        breaker: Default::default(),
        retry: RetryConfig {
            max_retries: 2,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(50),
        },
        rate_per_second: None,
        concurrency: 8,
    }
}

fn panel(experts: Vec<ExpertConfig>) -> Panel {
    Panel::new(experts)
}

fn completion(content: &str) -> serde_json::Value {
    json!({"choices": [{"message": {"role": "assistant", "content": content}}],
           "usage": {"prompt_tokens": 7, "completion_tokens": 3}})
}

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

const STRUCTURED: &str =
    r#"{"final_answer": "Paris", "reasoning": "It is the capital of France.", "confidence": 0.9}"#;

#[tokio::test]
async fn openai_is_held_to_the_answer_schema_and_its_prose_still_read() {
    let server = MockServer::start().await;
    let asked = json!({
        "messages": [
            {"role": "system", "content": ANSWER_INSTRUCTIONS},
            {"role": "user", "content": "capital?"},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "expert_answer", "strict": true, "schema": answer_schema()},
        },
    });
    Mock::given(body_partial_json(&asked))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(STRUCTURED)))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    // A server that takes `response_format` and answers in prose all the same.
    Mock::given(body_partial_json(&asked))
        .respond_with(ResponseTemplate::new(200).set_body_json(completion(
            "It is the capital of France.\n**Final answer:** Paris",
        )))
        .expect(1)
        .mount(&server)
        .await;
    let e = openai(&server.uri());
    let f = panel(vec![e.clone()]);

    let reply = f.ask(&e, "capital?").await.0.expect("an answer");
    assert_eq!(reply.answer, STRUCTURED, "the whole reply, as returned");
    let fa = reply.final_answer;
    assert_eq!(
        (fa.text.as_str(), fa.extraction),
        ("Paris", Extraction::JsonSchema)
    );
    assert_eq!(
        fa.reasoning.as_deref(),
        Some("It is the capital of France.")
    );
    assert_eq!(fa.confidence, Some(0.9));

    let fa = f
        .ask(&e, "capital?")
        .await
        .0
        .expect("an answer")
        .final_answer;
    assert_eq!(
        (fa.text.as_str(), fa.extraction),
        ("Paris", Extraction::FinalAnswerLine)
    );
}

#[tokio::test]
async fn without_structured_output_openai_is_read_by_its_final_answer_line_or_whole_text() {
    let server = MockServer::start().await;
    for content in [
        "The capital of France is Paris.\nFinal answer: Paris",
        "  It is Paris.  ",
    ] {
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(completion(content)))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    let mut e = openai(&server.uri());
    let ProviderConfig::Openai(c) = &mut e.provider else {
        unreachable!()
    };
    c.structured_output = false;
    c.max_tokens = Some(32);
    let f = panel(vec![e.clone()]);

    let fa = f
        .ask(&e, "capital?")
        .await
        .0
        .expect("an answer")
        .final_answer;
    assert_eq!(
        (fa.text.as_str(), fa.extraction),
        ("Paris", Extraction::FinalAnswerLine)
    );
    let fa = f
        .ask(&e, "capital?")
        .await
        .0
        .expect("an answer")
        .final_answer;
    assert_eq!(
        (fa.text.as_str(), fa.extraction),
        ("It is Paris.", Extraction::WholeText)
    );

    let sent: serde_json::Value = server.received_requests().await.expect("recorded")[0]
        .body_json()
        .expect("a JSON request");
    assert!(sent.get("response_format").is_none(), "{sent}");
    assert_eq!(sent["messages"][0]["content"], ANSWER_INSTRUCTIONS);
    assert_eq!(sent["max_tokens"], 32);
}

#[tokio::test]
async fn anthropic_is_made_to_call_the_final_answer_tool() {
    let server = MockServer::start().await;
    Mock::given(body_partial_json(json!({
        "system": ANSWER_INSTRUCTIONS,
        "tools": [{
            "name": "final_answer",
            "description": "Record your final answer, reasoning and confidence.",
            "input_schema": answer_schema(),
        }],
        "tool_choice": {"type": "tool", "name": "final_answer"},
    })))
    .respond_with(ResponseTemplate::new(200).set_body_json(json!({
        "content": [
            {"type": "text", "text": "Recording it."},
            {"type": "tool_use", "id": "toolu_1", "name": "final_answer",
             "input": {"final_answer": "Paris", "reasoning": "The capital.", "confidence": 0.8}},
        ],
        "stop_reason": "tool_use",
    })))
    .expect(1)
    .mount(&server)
    .await;
    let e = anthropic(&server.uri());
    let reply = panel(vec![e.clone()])
        .ask(&e, "q")
        .await
        .0
        .expect("an answer");
    let fa = &reply.final_answer;
    assert_eq!(
        (fa.text.as_str(), fa.extraction),
        ("Paris", Extraction::ToolUse)
    );
    assert_eq!(
        (fa.reasoning.as_deref(), fa.confidence),
        (Some("The capital."), Some(0.8))
    );
    let (text, input) = reply
        .answer
        .split_once('\n')
        .expect("text, then the tool input");
    assert_eq!(text, "Recording it.");
    let input: serde_json::Value = serde_json::from_str(input).expect("the input as JSON");
    assert_eq!(input["final_answer"], "Paris");
}

#[tokio::test]
async fn anthropic_falls_back_to_the_text_and_needs_one_or_the_other() {
    let server = MockServer::start().await;
    let blank_tool = json!({"type": "tool_use", "id": "toolu_1", "name": "final_answer",
                            "input": {"final_answer": " ", "reasoning": "", "confidence": 0.5}});
    for content in [
        json!([{"type": "text", "text": "Because it is.\nFinal answer: Paris"}]),
        json!([{"type": "text", "text": "Paris, surely."}, blank_tool]),
        json!([blank_tool]),
    ] {
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"content": content})))
            .up_to_n_times(1)
            .mount(&server)
            .await;
    }
    let mut e = anthropic(&server.uri());
    let ProviderConfig::Anthropic(c) = &mut e.provider else {
        unreachable!()
    };
    c.structured_output = false;
    let f = panel(vec![e.clone()]);

    let fa = f.ask(&e, "q").await.0.expect("an answer").final_answer;
    assert_eq!(
        (fa.text.as_str(), fa.extraction),
        ("Paris", Extraction::FinalAnswerLine)
    );
    let fa = f.ask(&e, "q").await.0.expect("an answer").final_answer;
    assert_eq!(
        (fa.text.as_str(), fa.extraction),
        ("Paris, surely.", Extraction::WholeText)
    );
    let (reply, attempts) = f.ask(&e, "q").await;
    assert_eq!(
        (reply.unwrap_err().class, attempts),
        (ErrorClass::Malformed, 1)
    );

    let sent: serde_json::Value = server.received_requests().await.expect("recorded")[0]
        .body_json()
        .expect("a JSON request");
    assert!(
        sent.get("tools").is_none() && sent.get("tool_choice").is_none(),
        "{sent}"
    );
    assert_eq!(sent["system"], ANSWER_INSTRUCTIONS);
}
