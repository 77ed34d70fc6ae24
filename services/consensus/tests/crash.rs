//! The consensus process killed -9 while it decides a stream of queries, then started again: every
//! query ends with exactly one consensus. The test plays expert-fanout itself, writing the results
//! the experts would have given.

use quorum_domain::types;
use quorum_event_store::ExpectedVersion;
use quorum_testkit::{DEADLINE, wait_until};

use crate::support::{Stack, responded, submission};

const QUERIES: usize = 40;

async fn decided(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE type IN ('quorum.consensus.reached', 'quorum.consensus.failed')",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(0)
}

#[tokio::test]
async fn a_consensus_killed_mid_stream_still_records_exactly_one_per_query() -> anyhow::Result<()> {
    let mut stack = Stack::start().await?;
    let store = stack.store.clone();
    stack.relay();
    let mut first = stack.consensus()?;

    let mut streams = Vec::new();
    for i in 0..QUERIES {
        let (stream, submitted) = submission(format!(r#"{{"question":"q{i}"}}"#))?;
        let mut events = vec![submitted.clone()];
        for (n, expert) in ["alpha", "beta", "gamma"].into_iter().enumerate() {
            events.push(responded(&submitted, &stream, n as u32, expert, "Paris")?);
        }
        // One event per append, as fan-out would: each may trigger a decision.
        for e in events {
            store.append(&stream, ExpectedVersion::Any, &[e]).await?;
        }
        streams.push(stream);
    }

    // Killed once it has started deciding, and surely before it is done.
    wait_until("a first consensus", DEADLINE, || async {
        decided(&stack.db.pool).await >= 1
    })
    .await?;
    first.kill().await?;
    let before_restart = decided(&stack.db.pool).await;
    let _second = stack.consensus()?;
    // Messages the killed process held come back after their ack wait (30 s): generous deadlines.
    wait_until("every query decided", DEADLINE * 2, || async {
        decided(&stack.db.pool).await >= QUERIES as i64
    })
    .await?;
    wait_until("the consensus consumer to settle", DEADLINE * 2, || async {
        let Ok(stream) = stack.js.get_stream(quorum_bus::EVENTS_STREAM).await else {
            return false;
        };
        stream
            .consumer_info("consensus")
            .await
            .is_ok_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
    })
    .await?;
    for s in &streams {
        let n = store
            .read_stream(s, 1, 100)
            .await?
            .iter()
            .filter(|r| r.event.ty == types::CONSENSUS_REACHED)
            .count();
        assert_eq!(n, 1, "{s}");
    }
    eprintln!("{before_restart} of {QUERIES} decided before the kill");
    stack.stop().await
}
