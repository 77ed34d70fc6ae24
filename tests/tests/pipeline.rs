//! A question through expert fan-out and consensus, against real NATS and Postgres: the relay,
//! the fan-out and the consensus run in this process, as `quorum up` runs them.
use quorum_domain::{StreamId, types};
use quorum_e2e::consumer_idle;
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};

use crate::common;
use common::*;

#[tokio::test]
async fn two_of_three_with_one_down_reach_a_consensus_that_lists_the_failure() -> anyhow::Result<()>
{
    let p = pipeline(
        vec![
            scripted("alpha", "Paris", 0.0, 0),
            scripted("beta", "paris.", 0.0, 0),
            scripted("gamma", "Paris", 1.0, 0),
        ],
        1,
    )
    .await?;
    let stream = p
        .ask(json!({"question": "What is the capital of France?", "quorum": 2}))
        .await?;
    let (ty, data) = p.consensus(&stream).await?;
    assert_eq!(ty, types::CONSENSUS_REACHED, "{data}");
    assert_eq!(data["answer"], "Paris");
    assert_eq!(data["majority"], json!(["alpha", "beta"]));
    assert_eq!(data["dissent"][0]["expert"], "gamma");
    assert!(
        data["dissent"][0]["error"]
            .as_str()
            .unwrap()
            .contains("scripted failure")
    );
    // Every expert's result is recorded, each once, in the query's stream.
    let events = p.env.store.read_stream(&stream, 1, 100).await?;
    let results = events
        .iter()
        .filter(|r| r.event.ty.starts_with("quorum.expert."))
        .count();
    assert_eq!(results, 3);
    p.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn a_query_exports_from_submission_to_consensus_in_order_with_its_causes()
-> anyhow::Result<()> {
    let p = pipeline(
        vec![
            scripted("alpha", "Paris", 0.0, 0),
            scripted("beta", "Paris", 0.0, 0),
            scripted("gamma", "Paris", 0.0, 0),
        ],
        1,
    )
    .await?;
    let stream = p
        .ask(json!({"question": "What is the capital of France?"}))
        .await?;
    p.consensus(&stream).await?;
    let pool = &p.env.db.pool;
    while quorum_audit::chainer::step(pool, 1000, types::AUDIT_CHECKPOINT)
        .await?
        .links
        > 0
    {}
    let query_id = stream.as_str().trim_start_matches("query/").to_owned();
    let selection = quorum_audit::export::Selection {
        correlation_id: Some(query_id.clone()),
        ..Default::default()
    };
    let records = quorum_audit::export::page(pool, &selection, 0, 1000).await?;
    let types: Vec<&str> = records
        .iter()
        .map(|r| r.event["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.first(), Some(&types::QUERY_SUBMITTED), "{types:?}");
    assert_eq!(types.last(), Some(&types::CONSENSUS_REACHED), "{types:?}");
    assert_eq!(
        types
            .iter()
            .filter(|t| t.starts_with("quorum.expert."))
            .count(),
        3
    );
    assert_eq!(records.len(), 5);
    // In chain order, and every cause is exported before what it caused.
    assert!(records.windows(2).all(|w| w[0].seq < w[1].seq));
    for (i, r) in records.iter().enumerate().skip(1) {
        let cause = r.event["causationid"]
            .as_str()
            .expect("a derived event names its cause");
        assert!(
            records[..i].iter().any(|c| c.event["id"] == cause),
            "{} names a cause {cause} not exported before it",
            r.event["type"]
        );
    }
    // Each record carries its link, and the chain verifies.
    assert!(
        records
            .iter()
            .all(|r| r.hash.len() == 64 && r.prev_hash.len() == 64)
    );
    let report = quorum_audit::verify::verify(pool, Default::default(), |_| {}).await?;
    assert!(report.ok(), "{report:?}");
    p.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn all_down_fails_and_a_silent_expert_is_ended_by_the_deadline() -> anyhow::Result<()> {
    let p = pipeline(
        vec![
            scripted("alpha", "Paris", 1.0, 0),
            scripted("beta", "Paris", 1.0, 0),
            // Answers long after any deadline here.
            scripted("slow", "Paris", 0.0, 600_000),
        ],
        1,
    )
    .await?;
    let all_down = p
        .ask(json!({"question": "capital?", "experts": ["alpha", "beta"]}))
        .await?;
    let (ty, data) = p.consensus(&all_down).await?;
    assert_eq!(
        (ty.as_str(), data["reason"].as_str()),
        (types::CONSENSUS_FAILED, Some("all_failed"))
    );

    let silent = p
        .ask(json!({"question": "capital?", "experts": ["alpha", "slow"], "quorum": 1, "deadline_ms": 500}))
        .await?;
    let (ty, data) = p.consensus(&silent).await?;
    assert_eq!(
        (ty.as_str(), data["reason"].as_str()),
        (types::CONSENSUS_FAILED, Some("deadline")),
        "{data}"
    );
    let dissent: Vec<&str> = data["dissent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["expert"].as_str().unwrap())
        .collect();
    assert!(dissent.contains(&"slow"), "{data}");
    p.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn the_deadline_ends_a_query_while_expert_fanout_is_down() -> anyhow::Result<()> {
    let experts = vec![
        scripted("alpha", "Paris", 0.0, 0),
        scripted("beta", "Paris", 0.0, 0),
    ];
    let p = build(experts, false, 1, Default::default()).await?;
    // No result will ever come: only the deadline, held in Postgres, can end these.
    let short = p
        .ask(json!({"question": "capital?", "deadline_ms": 500}))
        .await?;
    let long = p
        .ask(json!({"question": "capital?", "deadline_ms": 600_000}))
        .await?;
    let (ty, data) = p.consensus(&short).await?;
    assert_eq!(
        (ty.as_str(), data["reason"].as_str()),
        (types::CONSENSUS_FAILED, Some("deadline")),
        "{data}"
    );
    // The read model shows it ended, and the query whose deadline is far off still pending.
    let id = |s: &StreamId| s.as_str().trim_start_matches("query/").to_owned();
    wait_until(
        "the read model to show the ended query",
        DEADLINE,
        || async {
            let status: String =
                sqlx::query_scalar("SELECT status FROM queries WHERE query_id = $1")
                    .bind(id(&short))
                    .fetch_one(&p.env.db.pool)
                    .await
                    .ok()?;
            (status == "failed").then_some(())
        },
    )
    .await?;
    let status: String = sqlx::query_scalar("SELECT status FROM queries WHERE query_id = $1")
        .bind(id(&long))
        .fetch_one(&p.env.db.pool)
        .await?;
    assert_eq!(status, "pending");
    let events = p.env.store.read_stream(&long, 1, 100).await?;
    assert_eq!(events.len(), 1, "nothing but the submission: {events:?}");
    p.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn two_consensus_replicas_record_exactly_one_consensus_per_query() -> anyhow::Result<()> {
    let p = pipeline(
        vec![
            scripted("alpha", "Paris", 0.0, 0),
            scripted("beta", "Paris", 0.0, 5),
            scripted("gamma", "Lyon", 0.0, 10),
        ],
        2,
    )
    .await?;
    let mut streams = Vec::new();
    for i in 0..20 {
        streams.push(p.ask(json!({"question": format!("capital #{i}?")})).await?);
    }
    for s in &streams {
        p.consensus(s).await?;
    }
    wait_until("the consumers to settle everything", DEADLINE, || async {
        consumer_idle(&p.env.js, quorum_consensus::CONSUMER).await
            && consumer_idle(&p.env.js, quorum_expert_fanout::CONSUMER).await
    })
    .await?;
    for s in &streams {
        let events = p.env.store.read_stream(s, 1, 100).await?;
        assert_eq!(consensus_events(&events).len(), 1, "{s}");
        assert_eq!(events.len(), 5, "query, three results, one consensus: {s}");
    }

    // The read model, once caught up, has every query decided; rebuilt from scratch it is the same.
    let snapshot = || async {
        sqlx::query_scalar::<_, Value>(
            "SELECT coalesce(jsonb_agg(to_jsonb(q) ORDER BY query_id), '[]') FROM queries q",
        )
        .fetch_one(&p.env.db.pool)
        .await
    };
    wait_until(
        "the read model to have every consensus",
        DEADLINE,
        || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM queries WHERE status = 'reached'")
                .fetch_one(&p.env.db.pool)
                .await
                .is_ok_and(|n| n == 20)
        },
    )
    .await?;
    p.shutdown.cancel();
    p.shutdown.clone().wait(DEADLINE).await?;
    let live = snapshot().await?;
    assert_eq!(live[0]["experts"].as_object().map(|m| m.len()), Some(3));
    // What `quorum replay --rebuild queries` runs.
    quorum_consensus::view::rebuild(&p.env.db.pool, |_| {}).await?;
    assert_eq!(snapshot().await?, live);
    Ok(())
}
