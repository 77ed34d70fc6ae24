//! `quorum bench pipeline --experts openai --clients N` runs the closed loop beside a bare client
//! making the same calls, and prices the floor under a query's cost from raw baselines measured in
//! the same run: the figures a target is held against.

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_closed_loop_reports_the_bare_client_and_the_floor_it_prices() -> anyhow::Result<()> {
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["--nats-url", &nats.url(), "--database-url", &db.url])
        .args(["--json", "bench", "pipeline", "--experts", "openai"])
        .args(["--clients", "4", "--seconds", "2"])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let rows = report["closed_loop"].as_array().expect("closed-loop rows");
    assert_eq!(rows.len(), 1, "{report}");
    let row = &rows[0];
    let positive = |v: &Value| v.as_f64().filter(|x| *x > 0.0);
    assert!(row["quorum"]["queries"].as_u64() > Some(0), "{row}");
    assert!(
        positive(&row["bare_client"]["queries_per_sec"]).is_some(),
        "{row}"
    );
    assert!(
        positive(&row["bare_client"]["machine_cpu_seconds"]).is_some(),
        "{row}"
    );

    // Each part is priced from its own measurement, and the floor is their sum at a query's counts.
    let floor = &row["floor"];
    let part = |name: &str| positive(&floor[name]).unwrap_or_else(|| panic!("{name}: {floor}"));
    let raw =
        |name: &str| positive(&floor["raw"][name]).unwrap_or_else(|| panic!("{name}: {floor}"));
    let event_ms = raw("event_row_ms");
    let narrow_ms = raw("link_row_ms").min(event_ms);
    let http_ms = part("http_exchange_ms");
    let per_query = part("ms_per_query");
    let expected = 5.0 * event_ms
        + 7.0 * narrow_ms
        + 7.0 * raw("row_read_ms")
        + 5.0 * raw("jetstream_publish_ms")
        + 4.0 * raw("jetstream_delivery_ms")
        + 5.0 * http_ms;
    assert!(
        (per_query - expected).abs() < 1e-9 * expected.max(1.0),
        "{floor}"
    );
    let cores = std::thread::available_parallelism()?.get() as f64;
    let max = part("max_queries_per_sec");
    assert!(
        (max - cores * 1000.0 / per_query).abs() < 1e-6 * max,
        "{floor}"
    );
    // The highest ratio the floor allows, against the bare client of the same row.
    let bare = positive(&row["bare_client"]["queries_per_sec"]).expect("the bare client's rate");
    let floor_ratio = row["floor_ratio"].as_f64().expect("floor_ratio");
    assert!((floor_ratio - max / bare).abs() <= 0.005 + 1e-9, "{row}");
    Ok(())
}
