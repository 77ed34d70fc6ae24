//! `quorum ask`: submit a question through ingest, show each expert's result as it is recorded, then
//! the consensus with its agreement and dissent.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::{Api, answer};
use crate::exit::CliError;
use crate::outln;
use crate::stack::Target;

#[derive(Debug, Clone, clap::Args)]
pub struct AskArgs {
    /// The question, as the experts will read it (quote it for the shell).
    pub question: String,
    /// The experts to ask (comma-separated); all configured ones when not given.
    #[arg(long, value_delimiter = ',')]
    pub experts: Vec<String>,
    /// Answers that must agree (k of n); a simple majority when not given.
    #[arg(long)]
    pub quorum: Option<u32>,
    /// How answers are grouped: `majority` (the canonical rules alone), `similarity` (an
    /// embeddings endpoint for what the rules leave open) or `judge` (a judge model).
    #[arg(long, value_parser = ["majority", "similarity", "judge"])]
    pub strategy: Option<String>,
    /// How long the experts have, in milliseconds.
    #[arg(long)]
    pub deadline_ms: Option<u64>,
    /// `quorum`: decide as soon as a quorum agrees (the default of majority and similarity);
    /// `all`: wait for every expert (the default of judge).
    #[arg(long, value_parser = ["quorum", "all"])]
    pub decide: Option<String>,
    /// Relative tolerance within which numbers are the same answer (0.01 is 1 %).
    #[arg(long)]
    pub tolerance: Option<f64>,
    #[command(flatten)]
    pub api: Api,
}

impl AskArgs {
    pub fn question(question: String, api: Api) -> Self {
        Self {
            question,
            experts: Vec::new(),
            quorum: None,
            strategy: None,
            deadline_ms: None,
            decide: None,
            tolerance: None,
            api,
        }
    }
}

pub async fn run(target: &Target, args: &AskArgs, json_out: bool) -> anyhow::Result<()> {
    let (client, base, key) = args.api.connect(target)?;
    let mut body = json!({"question": args.question});
    if !args.experts.is_empty() {
        body["experts"] = json!(args.experts);
    }
    if let Some(k) = args.quorum {
        body["quorum"] = json!(k);
    }
    if let Some(s) = &args.strategy {
        body["strategy"] = json!(s);
    }
    if let Some(d) = args.deadline_ms {
        body["deadline_ms"] = json!(d);
    }
    if let Some(d) = &args.decide {
        body["decide"] = json!(d);
    }
    if let Some(t) = args.tolerance {
        body["tolerance"] = json!(t);
    }
    let submitted = answer(
        client
            .post(format!("{base}/v1/queries"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?,
    )
    .await?;
    let url = format!("{base}{}", submitted["url"].as_str().unwrap_or_default());
    if !json_out {
        outln!("query {}", submitted["query_id"].as_str().unwrap_or(""))?;
    }
    let deadline =
        Duration::from_millis(args.deadline_ms.unwrap_or(30_000)) + Duration::from_secs(30);
    let started = Instant::now();
    let mut seen = 0;
    let mut results = Vec::new();
    let waiting = crate::progress::spinner(json_out);
    // Lines go out through the spinner, so it redraws below them instead of through them.
    let say = |line: String| waiting.suspend(|| outln!("{line}"));
    loop {
        waiting.set_message(format!(
            "{} expert result{} in, waiting for the consensus",
            results.len(),
            if results.len() == 1 { "" } else { "s" }
        ));
        anyhow::ensure!(
            started.elapsed() < deadline,
            "no consensus after {deadline:?}"
        );
        let page = answer(client.get(&url).bearer_auth(&key).send().await?).await?;
        let events = page["events"].as_array().cloned().unwrap_or_default();
        for stored in events.iter().skip(seen) {
            let event = &stored["event"];
            let data = &event["data"];
            match event["type"].as_str().unwrap_or("") {
                "quorum.expert.responded" => {
                    if !json_out {
                        say(format!(
                            "  {:<12} {:<10} {:>6} ms  {}",
                            data["expert"].as_str().unwrap_or(""),
                            data["provider"].as_str().unwrap_or(""),
                            data["latency_ms"],
                            shown_answer(data)
                        ))?;
                    }
                    results.push(data.clone());
                }
                "quorum.expert.failed" => {
                    if !json_out {
                        say(format!(
                            "  {:<12} {:<10} failed: {} {}",
                            data["expert"].as_str().unwrap_or(""),
                            data["provider"].as_str().unwrap_or(""),
                            data["error_class"].as_str().unwrap_or(""),
                            data["message"].as_str().unwrap_or("")
                        ))?;
                    }
                    results.push(data.clone());
                }
                ty @ ("quorum.consensus.reached" | "quorum.consensus.failed") => {
                    waiting.finish_and_clear();
                    return finish(ty, data, &submitted, results, json_out);
                }
                _ => {}
            }
        }
        seen = events.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An expert's final answer, and its whole reply after it when that says more.
fn shown_answer(data: &Value) -> String {
    let whole = data["answer"].as_str().unwrap_or("");
    match data["final_answer"].as_str() {
        Some(f) if f != whole => format!("{f}  (from: {})", whole.replace('\n', " ")),
        _ => whole.to_owned(),
    }
}

fn finish(
    ty: &str,
    data: &Value,
    submitted: &Value,
    results: Vec<Value>,
    json_out: bool,
) -> anyhow::Result<()> {
    let reached = ty == "quorum.consensus.reached";
    // Shown in full either way; a failed consensus then exits 1 so that scripts can tell.
    let outcome = || {
        if reached {
            Ok(())
        } else {
            Err(CliError::failed(format!(
                "no consensus: {}",
                data["reason"].as_str().unwrap_or("unknown")
            ))
            .into())
        }
    };
    if json_out {
        outln!(
            "{}",
            json!({"query_id": submitted["query_id"], "outcome": ty, "consensus": data, "results": results})
        )?;
        return outcome();
    }
    if reached {
        outln!(
            "consensus: {}  (agreement {:.2}, {} strategy, majority {})",
            data["answer"].as_str().unwrap_or(""),
            data["agreement"].as_f64().unwrap_or(0.0),
            data["strategy"].as_str().unwrap_or(""),
            data["majority"]
                .as_array()
                .map(|m| m
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
                .unwrap_or_default()
        )?;
    } else {
        outln!("no consensus: {}", data["reason"].as_str().unwrap_or(""))?;
    }
    for d in data["dissent"].as_array().into_iter().flatten() {
        outln!(
            "  dissent {}: {}",
            d["expert"].as_str().unwrap_or(""),
            d["answer"].as_str().or(d["error"].as_str()).unwrap_or("")
        )?;
    }
    for p in data["pending"].as_array().into_iter().flatten() {
        outln!(
            "  pending {}: the quorum agreed first; a late answer is recorded, the consensus stands",
            p.as_str().unwrap_or("")
        )?;
    }
    let grouping = &data["grouping"];
    if let Some(method) = grouping["method"].as_str() {
        let model = grouping["model"]
            .as_str()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default();
        match grouping["error"].as_str() {
            Some(e) => outln!("  grouped by {method}{model} failed, canonical rules decided: {e}")?,
            None => outln!("  grouped by {method}{model}")?,
        }
    }
    let judge = &data["judge"];
    if judge.is_object() {
        match judge["error"].as_str() {
            Some(e) => outln!("  judge {}: {e}", judge["expert"].as_str().unwrap_or(""))?,
            None => outln!(
                "  merged by judge {} ({}, {} ms)",
                judge["expert"].as_str().unwrap_or(""),
                judge["model"].as_str().unwrap_or(""),
                judge["latency_ms"]
            )?,
        }
    }
    if let Some(saga) = data["saga"].as_str() {
        let id = saga.trim_start_matches("saga/");
        outln!("  plan started as {saga} (quorum saga show {id})")?;
    }
    outcome()
}
