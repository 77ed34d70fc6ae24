//! The final answer: asked for by schema or by a forced tool call, read from it, and read from
//! the text when a server answers in prose.

use quorum_domain::expert::{ANSWER_INSTRUCTIONS, ErrorClass, Extraction, answer_schema};
use quorum_experts::ProviderConfig;
use serde_json::json;
use wiremock::matchers::{body_partial_json, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{anthropic, completion, openai, panel};

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
