//! `quorum bench ingest` compares like with like: its raw Postgres baselines run at the client
//! count and batch size it gives Quorum (they were fixed at 16 connections and 8 writers of 100
//! whatever the flags said), and it reports what it measured.

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ingest_bench_measures_raw_postgres_at_its_own_concurrency() -> anyhow::Result<()> {
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["--nats-url", &nats.url(), "--database-url", &db.url])
        .args(["bench", "ingest", "--json", "--events", "400"])
        .args(["--clients", "6", "--batch-clients", "3", "--batch", "20"])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(
        (
            &report["clients"],
            &report["batch_clients"],
            &report["batch"]
        ),
        (&Value::from(6), &Value::from(3), &Value::from(20)),
        "{report}"
    );
    for rate in [
        "single_visible_events_per_sec",
        "batch_visible_events_per_sec",
        "raw_postgres_single_rows_per_sec",
        "raw_postgres_batched_rows_per_sec",
        "ratio_single_to_raw_single",
        "ratio_batch_to_raw_batched",
    ] {
        assert!(
            report[rate].as_f64().is_some_and(|r| r > 0.0),
            "{rate}: {report}"
        );
    }
    assert!(report.get("raw_connections").is_none(), "{report}");
    Ok(())
}
