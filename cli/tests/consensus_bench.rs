//! `quorum bench consensus` as a user runs it: the offline figures on both shipped collections,
//! and the embeddings and judge methods against deterministic stubs of their OpenAI-compatible
//! endpoints (the wire, not Quorum's code, is faked): one batched embeddings call per set with
//! open pairs, one judge call per such set held to the answer schema.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// Words of four letters or more, lowercase: what the stubs compare.
fn words(text: &str) -> BTreeSet<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4)
        .map(str::to_owned)
        .collect()
}

/// A bag-of-words vector over 64 hashed buckets.
fn embed(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; 64];
    for w in words(text) {
        let h = w
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        v[(h % 64) as usize] += 1.0;
    }
    v
}

/// The judge's verdicts on the prompt's numbered pairs: the same when they share a word.
fn judge(prompt: &str) -> Vec<bool> {
    let lines: Vec<&str> = prompt.lines().collect();
    lines
        .windows(2)
        .filter_map(|w| {
            let a = w[0].split_once(". A: ")?.1;
            let b = w[1].trim_start().strip_prefix("B: ")?;
            Some(!words(a).is_disjoint(&words(b)))
        })
        .collect()
}

#[derive(Default)]
struct Seen {
    embedding_calls: usize,
    judge_calls: usize,
    judge_held_to_schema: bool,
}

async fn stubs() -> anyhow::Result<(String, Arc<Mutex<Seen>>)> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (e, j) = (seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/v1/embeddings",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let seen = e.clone();
                async move {
                    seen.lock().unwrap().embedding_calls += 1;
                    let data: Vec<Value> = body["input"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .map(|(i, t)| json!({"index": i, "embedding": embed(t.as_str().unwrap_or(""))}))
                        .collect();
                    axum::Json(json!({"data": data}))
                }
            }),
        )
        .route(
            "/v1/chat/completions",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let seen = j.clone();
                async move {
                    let prompt = body["messages"]
                        .as_array()
                        .and_then(|m| m.last())
                        .and_then(|m| m["content"].as_str())
                        .unwrap_or("")
                        .to_owned();
                    {
                        let mut s = seen.lock().unwrap();
                        s.judge_calls += 1;
                        s.judge_held_to_schema |= body["response_format"]["type"] == "json_schema";
                    }
                    let verdicts = serde_json::to_string(&judge(&prompt)).unwrap();
                    let content = json!({"final_answer": verdicts, "reasoning": "stub", "confidence": 1.0});
                    axum::Json(json!({
                        "choices": [{"message": {"role": "assistant", "content": content.to_string()}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1}
                    }))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/v1"), seen))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_method_is_measured_on_both_collections() -> anyhow::Result<()> {
    let (url, seen) = stubs().await?;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args([
            "bench",
            "consensus",
            "--json",
            "--embeddings-url",
            &url,
            "--judge-url",
            &url,
        ])
        .args(["--embeddings-model", "stub", "--judge-model", "stub"])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let collections = report["collections"].as_array().expect("collections");
    assert_eq!(collections.len(), 2, "the shipped set and the held-out one");
    for c in collections {
        let methods: Vec<&str> = c["methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["method"].as_str().unwrap())
            .collect();
        assert_eq!(
            methods,
            [
                "before: exact normalized text",
                "before: word-set overlap",
                "canonical",
                "embeddings",
                "judge"
            ]
        );
        for m in c["methods"].as_array().unwrap() {
            let share = m["share_right"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&share), "{m}");
            if matches!(m["method"].as_str(), Some("embeddings" | "judge")) {
                assert!(m["calls"].as_u64().unwrap() > 0, "{m}");
            }
        }
        let canonical = &c["methods"][2];
        assert_eq!(canonical["false_merges"], 0, "{canonical}");
    }
    let seen = seen.lock().unwrap();
    assert!(seen.embedding_calls > 0 && seen.judge_calls > 0);
    assert!(
        seen.judge_held_to_schema,
        "the judge is asked for the answer schema"
    );
    Ok(())
}
