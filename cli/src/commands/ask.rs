//! `quorum ask`: submit a question through ingest, show each expert's result as it is recorded, then
//! the consensus with its agreement and dissent, streamed from the query's watch (no polling).

use std::collections::BTreeSet;
use std::time::Duration;

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

/// Refuses experts the running local stack does not have, before anything is sent: its config
/// says which it asks. Against a stack this tool did not start, the names are left to the server.
fn check_experts(target: &Target, named: &[String]) -> anyhow::Result<()> {
    if named.is_empty() || target.recorded().is_none() {
        return Ok(());
    }
    let config = target.config_file(None);
    let up: super::up_config::UpConfig = quorum_runtime::config::load_validated(config.as_deref())?;
    let known: Vec<&str> = up.experts.iter().map(|e| e.name.as_str()).collect();
    let unknown: Vec<&str> = named
        .iter()
        .map(String::as_str)
        .filter(|n| !known.contains(n))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(crate::exit::CliError::usage(format!(
        "no expert named {} in the running stack; it has {} (see `[[experts]]` in its config)",
        unknown.join(", "),
        known.join(", ")
    ))
    .into())
}

pub async fn run(target: &Target, args: &AskArgs, json_out: bool) -> anyhow::Result<()> {
    check_experts(target, &args.experts)?;
    let (client, base, key) = args.api.connect(target)?;
    let submitted = answer(
        client
            .post(format!("{base}/v1/queries"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(query_body(args).to_string())
            .send()
            .await?,
    )
    .await?;
    let query_id = submitted["query_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if !json_out {
        outln!("query {query_id}")?;
    }
    let mut watch = Watch {
        client: &client,
        url: format!("{base}/v1/queries/{query_id}/watch"),
        key: &key,
        json_out,
        shown: BTreeSet::new(),
        results: Vec::new(),
    };
    // The experts' deadline, and time for the consensus and the read model after it.
    let deadline =
        Duration::from_millis(args.deadline_ms.unwrap_or(30_000)) + Duration::from_secs(30);
    let decided = watch.until_decided(deadline).await?;
    let ty = if decided["status"] == "reached" {
        "quorum.consensus.reached"
    } else {
        "quorum.consensus.failed"
    };
    finish(
        ty,
        &decided["consensus"],
        &submitted,
        watch.results,
        json_out,
    )
}

/// The submission's body: the question, and what the flags set.
fn query_body(args: &AskArgs) -> Value {
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
    body
}

/// A query's watch, followed until its decision: each expert's result is shown once, as it is
/// stored.
struct Watch<'a> {
    client: &'a reqwest::Client,
    url: String,
    key: &'a str,
    json_out: bool,
    /// The experts whose results were shown.
    shown: BTreeSet<String>,
    /// Their results, in the order shown.
    results: Vec<Value>,
}

impl Watch<'_> {
    /// The query's row once decided, or an error after `deadline`. The watch streams each change
    /// of the query as it is stored (ADR 22); one that ends before the decision (the server's
    /// limit, a dropped connection) is opened again.
    async fn until_decided(&mut self, deadline: Duration) -> anyhow::Result<Value> {
        let until = tokio::time::Instant::now() + deadline;
        let waiting = crate::progress::spinner(self.json_out);
        waiting.set_message(status(0));
        loop {
            match tokio::time::timeout_at(until, self.watch_once(&waiting)).await {
                Err(_) => anyhow::bail!("no consensus after {deadline:?}"),
                Ok(r) => {
                    if let Some(row) = r? {
                        waiting.finish_and_clear();
                        return Ok(row);
                    }
                }
            }
        }
    }

    /// One opening of the watch: the decided row, or `None` when it ended undecided.
    async fn watch_once(
        &mut self,
        waiting: &indicatif::ProgressBar,
    ) -> anyhow::Result<Option<Value>> {
        let response = self
            .client
            .get(&self.url)
            .bearer_auth(self.key)
            .send()
            .await?;
        if response.status().as_u16() == 429 {
            // The tenant holds as many waits as it may: come back when told.
            let after = retry_after(&response).unwrap_or(Duration::from_secs(1));
            tokio::time::sleep(after).await;
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(answer(response).await.expect_err("not a success"));
        }
        let mut events = Events::new(response);
        while let Some((kind, row)) = events.next().await? {
            let experts = row["experts"].as_object().cloned().unwrap_or_default();
            let mut new: Vec<&Value> = experts
                .iter()
                .filter(|(name, _)| !self.shown.contains(*name))
                .map(|(_, r)| r)
                .collect();
            // Results stored together come in one change: shown fastest first.
            new.sort_by_key(|r| r["latency_ms"].as_u64().unwrap_or(u64::MAX));
            for result in new {
                if !self.json_out {
                    // Through the spinner, so it redraws below the line instead of through it.
                    waiting.suspend(|| outln!("{}", result_line(result)))?;
                }
                self.shown
                    .insert(result["expert"].as_str().unwrap_or_default().to_owned());
                self.results.push(result.clone());
            }
            waiting.set_message(status(self.results.len()));
            if kind == "decided" {
                return Ok(Some(row));
            }
        }
        // The stream ended undecided; a moment before opening it again.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(None)
    }
}

/// The spinner's line while `n` results are in.
fn status(n: usize) -> String {
    format!(
        "{n} expert result{} in, waiting for the consensus",
        if n == 1 { "" } else { "s" }
    )
}

/// How an expert's result is shown as it comes in.
fn result_line(result: &Value) -> String {
    if result["outcome"] == "failed" {
        format!(
            "  {:<12} {:<10} failed: {} {}",
            result["expert"].as_str().unwrap_or(""),
            result["provider"].as_str().unwrap_or(""),
            result["error_class"].as_str().unwrap_or(""),
            result["message"].as_str().unwrap_or("")
        )
    } else {
        format!(
            "  {:<12} {:<10} {:>6} ms  {}",
            result["expert"].as_str().unwrap_or(""),
            result["provider"].as_str().unwrap_or(""),
            result["latency_ms"],
            shown_answer(result)
        )
    }
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let secs = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Server-sent events off a response, one (event, data) at a time.
struct Events {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next named event with its JSON data; None when the stream ends. Comments (the
    /// keep-alives) and unnamed events are passed over.
    async fn next(&mut self) -> anyhow::Result<Option<(String, Value)>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let bytes: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&bytes);
                let (mut kind, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        k.trim().clone_into(&mut kind);
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.strip_prefix(' ').unwrap_or(d));
                    }
                }
                if kind.is_empty() {
                    continue;
                }
                return Ok(Some((kind, serde_json::from_str(&data)?)));
            }
            match self.response.chunk().await? {
                // Bytes, not text: a chunk may end inside a character.
                Some(c) => self.buffer.extend_from_slice(&c),
                None => return Ok(None),
            }
        }
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
