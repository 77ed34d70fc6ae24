//! `quorum bench pipeline --tracing` compares a run with tracing off against one whose spans are
//! really exported: the collector it runs must have received the spans of the queries, or the
//! comparison would measure nothing. Each mode runs once per round, and the ratios are the
//! rounds' medians.

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracing_bench_exports_the_spans_it_compares() -> anyhow::Result<()> {
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["--nats-url", &nats.url(), "--database-url", &db.url])
        .args(["--json", "bench", "pipeline", "--tracing"])
        .args(["--at", "20", "--step-seconds", "2", "--rounds", "2"])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let rounds = report["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 2, "{report}");
    let runs = std::iter::once(&report["silent"]).chain(
        rounds
            .iter()
            .flat_map(|r| [&r["off"], &r["on"], &r["sampled"]]),
    );
    for run in runs {
        let queries = run["queries"].as_u64().unwrap_or(0);
        assert!(queries >= 20, "{queries} queries: {run}");
        assert!(
            run["report"]["open_loop"]["overhead_p99_ms"].as_f64() > Some(0.0),
            "{run}"
        );
    }
    // Every query of the traced runs is several spans (a request, sends, processes, three expert
    // calls, a decision), all received and decoded by the collector.
    let queries: u64 = rounds
        .iter()
        .filter_map(|r| r["on"]["queries"].as_u64())
        .sum();
    let spans = report["spans_exported"].as_u64().unwrap_or(0);
    assert!(
        spans >= 5 * queries,
        "{spans} spans for {queries} queries: {report}"
    );
    // One trace in ten: far fewer spans than every trace's (the traces a query starts are decided
    // where they start, so a sampled-out query builds none). Not "some": with a few dozen
    // queries, none sampled is a chance outcome.
    let sampled = report["sampled_spans_exported"].as_u64().unwrap_or(0);
    assert!(
        sampled * 3 < spans,
        "{sampled} sampled spans against {spans}: {report}"
    );
    for ratio in ["p99_ratio", "cpu_per_query_ratio"] {
        assert!(report[ratio].as_f64() > Some(0.0), "{ratio}: {report}");
    }
    // The ratio reported is the median of the rounds' (of two, their mean).
    let cpu: Vec<f64> = rounds
        .iter()
        .filter_map(|r| r["on_off"]["cpu_per_query"].as_f64())
        .collect();
    let median = report["cpu_per_query_ratio"].as_f64().unwrap_or(0.0);
    assert!(
        cpu.len() == 2 && (median - (cpu[0] + cpu[1]) / 2.0).abs() <= 0.01,
        "{median} from {cpu:?}: {report}"
    );
    // Both were offered one rate: no throughput is compared.
    assert!(report["throughput_ratio"].is_null(), "{report}");
    Ok(())
}
