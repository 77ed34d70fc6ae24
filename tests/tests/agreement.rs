//! Experts that agree in different words reach a consensus, end to end: final answers recorded
//! with how they were read, the canonical rules under every strategy, embeddings and a judge for
//! what those rules leave open (never for a contradiction), and a query decided as soon as a
//! quorum agrees, with the late answer recorded and shown as late. Against real NATS and Postgres;
//! the embeddings endpoint is a stub at the wire.

use std::time::Duration;

use quorum_domain::types;
use quorum_experts::embeddings::EmbeddingsConfig;
use quorum_experts::scripted::{Rule, ScriptedConfig};
use quorum_experts::{ExpertConfig, ProviderConfig};
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};

use crate::common;
use common::*;

const PARIS: [(&str, &str); 3] = [
    ("alpha", "Paris"),
    ("beta", "The capital of France is Paris."),
    (
        "gamma",
        "It's Paris, which has been the French capital for centuries.",
    ),
];

/// Scripted experts, each giving its answer to any question.
fn experts(answers: &[(&str, &str)]) -> Vec<ExpertConfig> {
    answers
        .iter()
        .map(|(name, answer)| {
            let mut e = scripted(name, answer, 0.0, 0);
            e.provider = ProviderConfig::Scripted(ScriptedConfig {
                default_answer: (*answer).to_owned(),
                ..Default::default()
            });
            e
        })
        .collect()
}

#[tokio::test]
async fn three_wordings_of_paris_are_one_consensus_under_every_strategy() -> anyhow::Result<()> {
    let p = pipeline(experts(&PARIS), 1).await?;
    for strategy in [None, Some("majority"), Some("similarity"), Some("judge")] {
        let mut query = json!({"question": "What is the capital of France?"});
        if let Some(s) = strategy {
            query["strategy"] = s.into();
        }
        let stream = p.ask(query).await?;
        let (ty, data) = p.consensus(&stream).await?;
        assert_eq!(ty, types::CONSENSUS_REACHED, "{strategy:?}: {data}");
        assert_eq!(data["answer"], "Paris", "{strategy:?}: {data}");
        assert_eq!(data["agreement"], 1.0, "{strategy:?}: {data}");
        assert_eq!(data["dissent"], json!([]), "{strategy:?}: {data}");
        let mut majority: Vec<String> = serde_json::from_value(data["majority"].clone())?;
        majority.sort();
        assert_eq!(majority, ["alpha", "beta", "gamma"], "{strategy:?}: {data}");
        // No method was configured: the canonical rules decided, and say how each pair is one.
        assert_eq!(data["grouping"]["method"], "canonical", "{data}");
        assert!(
            data["grouping"]["links"]
                .as_array()
                .is_some_and(|l| !l.is_empty()),
            "{data}"
        );
    }
    // Each result keeps the whole reply and the final answer compared, and says how it was read.
    let stream = p
        .ask(json!({"question": "What is the capital of France?", "decide": "all"}))
        .await?;
    p.consensus(&stream).await?;
    let events = p.env.store.read_stream(&stream, 1, 100).await?;
    let results: Vec<Value> = events
        .iter()
        .filter(|r| r.event.ty == types::EXPERT_RESPONDED)
        .map(|r| serde_json::from_slice(r.event.data.as_deref().unwrap_or_default()))
        .collect::<Result<_, _>>()?;
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r["extraction"], "whole_text", "{r}");
        assert_eq!(r["final_answer"], r["answer"], "{r}");
    }
    p.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_quorum_that_agrees_decides_and_a_slow_answer_is_recorded_late() -> anyhow::Result<()> {
    let mut experts = experts(&[("alpha", "Paris"), ("beta", "It is Paris.")]);
    experts.push(scripted("gamma", "Lyon", 0.0, 2_000));
    let p = pipeline(experts, 1).await?;
    let question = "What is the capital of France?";

    let stream = p.ask(json!({"question": question})).await?;
    let (ty, data) = p.consensus(&stream).await?;
    assert_eq!(ty, types::CONSENSUS_REACHED, "{data}");
    assert_eq!(data["answer"], "Paris");
    assert_eq!(data["majority"], json!(["alpha", "beta"]));
    assert_eq!(
        data["pending"],
        json!(["gamma"]),
        "decided before gamma answered"
    );
    assert_eq!(
        data["dissent"],
        json!([]),
        "a pending expert is no dissenter"
    );

    // Gamma's answer comes after the consensus: recorded, shown as late, and the consensus stands.
    let late: Value = wait_until(
        "gamma's late answer in the read model",
        DEADLINE,
        || async {
            let experts: Value =
                sqlx::query_scalar("SELECT experts FROM queries WHERE stream_id = $1")
                    .bind(stream.as_str())
                    .fetch_one(&p.env.db.pool)
                    .await
                    .ok()?;
            Some(experts["gamma"].clone()).filter(|g| !g.is_null())
        },
    )
    .await?;
    assert_eq!(late["late"], true, "{late}");
    assert_eq!(late["answer"], "Lyon");
    let events = p.env.store.read_stream(&stream, 1, 100).await?;
    let decided = consensus_events(&events);
    assert_eq!(decided.len(), 1, "the consensus stands alone");
    let gamma = events
        .iter()
        .find(|r| {
            r.event.ty == types::EXPERT_RESPONDED
                && r.event
                    .data
                    .as_deref()
                    .is_some_and(|d| d.windows(5).any(|w| w == b"gamma"))
        })
        .expect("gamma's answer is recorded");
    assert!(
        gamma.stream_version > decided[0].stream_version,
        "after the consensus"
    );
    let experts_on_time: Value =
        sqlx::query_scalar("SELECT experts FROM queries WHERE stream_id = $1")
            .bind(stream.as_str())
            .fetch_one(&p.env.db.pool)
            .await?;
    assert_eq!(experts_on_time["alpha"].get("late"), None);

    // Asked to wait for all, the same query waits for gamma, who then dissents.
    let stream = p
        .ask(json!({"question": question, "decide": "all"}))
        .await?;
    let (_, data) = p.consensus(&stream).await?;
    assert_eq!(data["pending"], Value::Null, "{data}");
    assert_eq!(data["dissent"][0]["expert"], "gamma", "{data}");
    assert_eq!(data["dissent"][0]["answer"], "Lyon", "{data}");
    p.shutdown.cancel();
    Ok(())
}

/// An OpenAI-compatible embeddings endpoint that embeds every text as the same vector: it would
/// merge anything, so what stays apart was kept apart by the contradiction rules. Counts calls.
async fn embeddings_that_merge_everything()
-> anyhow::Result<(String, std::sync::Arc<std::sync::atomic::AtomicUsize>)> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new().route(
        "/v1/embeddings",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let n = body["input"].as_array().map_or(0, Vec::len);
                let data: Vec<Value> = (0..n)
                    .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.6, 0.8]}))
                    .collect();
                axum::Json(json!({"object": "list", "data": data, "model": body["model"]}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/v1"), calls))
}

#[tokio::test]
async fn embeddings_settle_what_the_rules_leave_open_but_never_a_contradiction()
-> anyhow::Result<()> {
    let (url, calls) = embeddings_that_merge_everything().await?;
    let methods = quorum_consensus::Methods {
        judge: None,
        embeddings: Some(EmbeddingsConfig {
            base_url: url,
            model: "stub-embed".into(),
            api_key_env: "QUORUM_TEST_NO_SUCH_KEY".into(),
            timeout: Duration::from_secs(30),
            retry: Default::default(),
            threshold: 0.9,
        }),
    };
    let both = methods.clone();
    let answers = [
        ("alpha", "USA"),
        ("beta", "The United States"),
        ("gamma", "China"),
    ];
    let p = build(experts(&answers), true, 1, methods).await?;
    let q = "Which country has the largest economy?";
    let stream = p
        .ask(json!({"question": q, "strategy": "similarity", "decide": "all"}))
        .await?;
    let (ty, data) = p.consensus(&stream).await?;
    assert_eq!(ty, types::CONSENSUS_REACHED, "{data}");
    assert_eq!(data["majority"], json!(["alpha", "beta"]), "{data}");
    assert_eq!(
        data["dissent"][0]["expert"], "gamma",
        "names differ: embeddings may not merge"
    );
    assert_eq!(data["grouping"]["method"], "embeddings");
    assert_eq!(data["grouping"]["model"], "stub-embed");
    assert_eq!(data["grouping"]["links"][0]["by"], "embeddings", "{data}");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one batched call"
    );

    // Different numbers are a contradiction whatever the embeddings say.
    let numbers = [("alpha", "8"), ("beta", "eight legs"), ("gamma", "9")];
    let p2 = build(experts(&numbers), true, 1, both).await?;
    let stream = p2
        .ask(json!({"question": "How many legs does a spider have?", "strategy": "similarity", "decide": "all"}))
        .await?;
    let (_, data) = p2.consensus(&stream).await?;
    assert_eq!(data["majority"], json!(["alpha", "beta"]), "{data}");
    p.shutdown.cancel();
    p2.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_judge_decides_which_answers_mean_the_same_in_one_call() -> anyhow::Result<()> {
    let mut judge = scripted("judge", "unused", 0.0, 0);
    // Asked about the pairs in the order of the experts' names: (USA, The United States),
    // (USA, China), (The United States, China).
    judge.provider = ProviderConfig::Scripted(ScriptedConfig {
        rules: vec![Rule {
            contains: "for each numbered pair".into(),
            answer:
                "USA and the United States are one country.\nFinal answer: [true, false, false]"
                    .into(),
        }],
        default_answer: "The United States".into(),
        ..Default::default()
    });
    let answers = [
        ("alpha", "USA"),
        ("beta", "The United States"),
        ("gamma", "China"),
    ];
    let p = pipeline_with_judge(experts(&answers), 1, Some(judge)).await?;
    let stream = p
        .ask(json!({"question": "Which country has the largest economy?", "strategy": "judge"}))
        .await?;
    let (ty, data) = p.consensus(&stream).await?;
    assert_eq!(ty, types::CONSENSUS_REACHED, "{data}");
    assert_eq!(data["majority"], json!(["alpha", "beta"]), "{data}");
    assert_eq!(data["grouping"]["method"], "judge", "{data}");
    assert_eq!(data["grouping"].get("error"), None, "{data}");
    assert_eq!(data["grouping"]["links"][0]["by"], "judge", "{data}");
    assert_eq!(data["answer"], "The United States", "the judge's merge");
    p.shutdown.cancel();
    Ok(())
}
