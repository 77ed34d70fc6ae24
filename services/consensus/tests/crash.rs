//! The consensus process killed -9 while it decides a stream of queries, then started again: every
//! query ends with exactly one consensus. The test plays expert-fanout itself, writing the results
//! the experts would have given.

use std::process::Stdio;

use bytes::Bytes;
use quorum_domain::expert::ExpertResponded;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_testkit::{DEADLINE, wait_until};
use tokio::process::{Child, Command};

const QUERIES: usize = 40;

fn consensus(nats: &str, db: &str) -> anyhow::Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_quorum-consensus"))
        .env("QUORUM__COMMON__NATS_URL", nats)
        .env("QUORUM__COMMON__DATABASE_URL", db)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()?)
}

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
    quorum_testkit::init_tracing();
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let store = EventStore::new(db.pool.clone());
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    quorum_bus::ensure_streams(&js).await?;
    let relay_stop = tokio_util::sync::CancellationToken::new();
    let relay = tokio::spawn(quorum_relay::run(
        db.pool.clone(),
        js.clone(),
        Default::default(),
        relay_stop.clone(),
    ));
    let mut first = consensus(&nats.url(), &db.url)?;

    let tenant = TenantId::new("acme")?;
    let mut streams = Vec::new();
    for i in 0..QUERIES {
        let id = uuid::Uuid::now_v7().to_string();
        let stream = StreamId::new("query", id.clone())?;
        let mut submitted = Event::new(
            "/quorum/ingest",
            types::QUERY_SUBMITTED,
            stream.clone(),
            tenant.clone(),
            Bytes::from(format!(r#"{{"question":"q{i}"}}"#)),
        );
        submitted.id = id;
        let mut events = vec![submitted.clone()];
        for (n, expert) in ["alpha", "beta", "gamma"].into_iter().enumerate() {
            let data = ExpertResponded {
                expert: expert.into(),
                provider: "scripted".into(),
                model: "scripted".into(),
                answer: "Paris".into(),
                final_answer: None,
                extraction: None,
                reasoning: None,
                confidence: None,
                weight: 1.0,
                latency_ms: 0,
                attempts: 1,
                usage: None,
            };
            events.push(Event::derived(
                &submitted,
                "expert-fanout",
                n as u32,
                "/quorum/expert-fanout",
                types::EXPERT_RESPONDED,
                stream.clone(),
                Bytes::from(serde_json::to_vec(&data)?),
            ));
        }
        // One event per append, as fan-out would: each may trigger a decision.
        for e in events {
            store.append(&stream, ExpectedVersion::Any, &[e]).await?;
        }
        streams.push(stream);
    }

    // Killed once it has started deciding, and surely before it is done.
    wait_until("a first consensus", DEADLINE, || async {
        decided(&db.pool).await >= 1
    })
    .await?;
    first.kill().await?;
    let before_restart = decided(&db.pool).await;
    let _second = consensus(&nats.url(), &db.url)?;
    // Messages the killed process held come back after their ack wait (30 s): generous deadlines.
    wait_until("every query decided", DEADLINE * 2, || async {
        decided(&db.pool).await >= QUERIES as i64
    })
    .await?;
    wait_until("the consensus consumer to settle", DEADLINE * 2, || async {
        let Ok(stream) = js.get_stream(quorum_bus::EVENTS_STREAM).await else {
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
    relay_stop.cancel();
    relay.await?;
    Ok(())
}
