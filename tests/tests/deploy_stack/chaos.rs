//! `quorum chaos`, a short pass as a user runs it: every fault kind strikes once (the first kill
//! the relay leader's) while events flow over HTTP and NATS, queries are answered and sagas call a
//! recording service, every service running as two replicas; nothing acknowledged is lost or
//! doubled, and every saga ends as its plan says with each effect applied once.

use std::collections::BTreeSet;

use anyhow::ensure;
use serde_json::Value;

use super::harness::binaries;

#[tokio::test]
async fn a_short_chaos_pass_loses_and_doubles_nothing() -> anyhow::Result<()> {
    let report = passed(&["chaos", "--duration", "100s", "--rate", "10", "--seed", "3"]).await?;
    let kinds: BTreeSet<&str> = report["faults"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    ensure!(
        kinds == BTreeSet::from(["kill", "nats", "nats-wipe", "postgres", "stop"]),
        "{report}"
    );
    let verdict = &report["verdict"];
    let total = |what: &str, field: &str| -> u64 {
        verdict["windows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| w[what][field].as_u64().unwrap_or(0))
            .sum()
    };
    let faults = report["faults"].as_array().cloned().unwrap_or_default();
    ensure!(
        faults.iter().any(|f| f["target"] == "relay leader"),
        "{report}"
    );
    for what in ["events", "queries", "sagas"] {
        ensure!(total(what, "ok") > 0, "no {what} came through: {report}");
        ensure!(total(what, "lost") == 0, "{report}");
        ensure!(total(what, "duplicated") == 0, "{report}");
    }
    ensure!(verdict["audit_ok"] == true, "{report}");
    ensure!(verdict["unexpected"] == 0, "{report}");
    ensure!(verdict["unexpected_effects"] == 0, "{report}");
    ensure!(verdict["nats_events_ok"].as_u64() > Some(0), "{report}");
    Ok(())
}

/// `quorum soak`, one minute as CI runs it: the services' memory and open files level off after
/// the warm-up, admission control refuses the burst (at ten times the sustained rate) with
/// `Retry-After`, nothing is lost. (The p99's drift is
/// not judged here: on a machine running other tests it measures the neighbours.)
#[tokio::test]
async fn a_one_minute_soak_holds_steady() -> anyhow::Result<()> {
    let report = passed(&[
        "soak",
        "--duration",
        "60s",
        "--rate",
        "20",
        "--max-p99-drift",
        "0",
    ])
    .await?;
    let processes = report["processes"].as_object().cloned().unwrap_or_default();
    for name in [
        "ingest",
        "expert-fanout",
        "consensus",
        "tool-exec",
        "audit",
        "dlq-replayer",
        "nats-server",
        "postgres",
    ] {
        let rss = &processes.get(name).map(|p| p["rss_mb"].clone());
        ensure!(
            rss.as_ref()
                .and_then(|r| r[2].as_f64())
                .is_some_and(|mb| mb > 0.0),
            "{name} was not sampled: {report}"
        );
    }
    ensure!(report["p99_ms"][1].as_f64() > Some(0.0), "{report}");
    ensure!(report["burst"]["sent"].as_u64() > Some(0), "{report}");
    ensure!(report["burst"]["refused"].as_u64() > Some(0), "{report}");
    ensure!(
        report["burst"]["refused_without_retry_after"] == 0,
        "{report}"
    );
    ensure!(report["passed"] == true, "{report}");
    Ok(())
}

/// Runs `quorum --json <args>` on a stack of its own, and its JSON report once it exited 0.
async fn passed(args: &[&str]) -> anyhow::Result<Value> {
    let bin = binaries().await?;
    let out = tokio::process::Command::new(bin.join("quorum"))
        .arg("--json")
        .args(args)
        .env_remove("QUORUM_NATS_URL")
        .env_remove("QUORUM_DATABASE_URL")
        .kill_on_drop(true)
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| anyhow::anyhow!("no JSON report ({e}); stderr:\n{stderr}"))?;
    ensure!(out.status.success(), "{report}\n{stderr}");
    Ok(report)
}
