//! Every service's `/metrics`, as Prometheus would scrape it from the processes compose runs, read
//! by a real Prometheus text parser (the Python `prometheus-client`'s, which scripts/setup.sh
//! installs pinned), with the metrics an on-call engineer's dashboards and alerts read present.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};

use super::harness::Running;

/// The series each service must expose once it has served a query (by sample name).
const EXPECTED: [(&str, &[&str]); 6] = [
    (
        "ingest",
        &[
            "quorum_http_request_duration_seconds_bucket",
            "quorum_http_requests_in_flight",
            "quorum_ingest_admitted_events",
            "quorum_ingest_admission_capacity_events",
            "quorum_relay_lag_seconds",
            "quorum_relay_watermark_held_events",
            "quorum_relay_published_total",
            "quorum_db_connections",
            "quorum_db_connections_max",
        ],
    ),
    (
        "expert-fanout",
        &[
            "quorum_consumer_pending_messages",
            "quorum_consumer_oldest_pending_seconds",
            "quorum_handler_duration_seconds_bucket",
            "quorum_messages_total",
            "quorum_expert_call_duration_seconds_bucket",
            "quorum_breaker_state",
            "quorum_db_connections",
        ],
    ),
    (
        "consensus",
        &[
            "quorum_consumer_pending_messages",
            "quorum_consumer_oldest_pending_seconds",
            "quorum_handler_duration_seconds_bucket",
            "quorum_query_decision_seconds_bucket",
            "quorum_db_connections",
        ],
    ),
    (
        "tool-exec",
        &["quorum_consumer_pending_messages", "quorum_db_connections"],
    ),
    (
        "audit",
        &[
            "quorum_http_request_duration_seconds_bucket",
            "quorum_leader",
            "quorum_db_connections",
        ],
    ),
    ("dlq-replayer", &["quorum_leader", "quorum_db_connections"]),
];

/// Parses `text` with prometheus-client and returns every sample's name.
fn parse(text: &str) -> anyhow::Result<BTreeSet<String>> {
    let script = "import sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        for family in text_string_to_metric_families(sys.stdin.read()):\n\
        \x20   for sample in family.samples:\n\
        \x20       print(sample.name)\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("run python3")?;
    use std::io::Write;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(text.as_bytes())?;
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "prometheus-client refused the exposition: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_owned)
        .collect())
}

/// Scrapes every running service's admin port and checks what it exposes.
pub async fn check(client: &reqwest::Client, running: &[Running]) -> anyhow::Result<()> {
    for (service, names) in EXPECTED {
        let process = running
            .iter()
            .find(|r| r.spec.name == service)
            .with_context(|| format!("{service} is not running"))?;
        let url = process.url(9090, "/metrics")?;
        let text = client
            .get(&url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let samples = parse(&text).with_context(|| format!("{service}'s /metrics"))?;
        let missing: Vec<&&str> = names.iter().filter(|n| !samples.contains(**n)).collect();
        ensure!(
            missing.is_empty(),
            "{service}'s /metrics lacks {missing:?}; it has {samples:?}"
        );
    }
    Ok(())
}
