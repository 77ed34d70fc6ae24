//! The relay against real NATS and Postgres: every event exactly once, per-stream order even when
//! commit order inverts two versions, and a refill after NATS lost its store.

use std::collections::HashMap;
use std::time::Duration;

use quorum_domain::StreamId;
use quorum_e2e::{relayed, stream_len, test_event};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_relay::RelayConfig;
use quorum_testkit::{DEADLINE, wait_until};

use quorum_e2e::{Env, env};

fn start_relay(env: &Env) -> tokio::task::JoinHandle<()> {
    let config = RelayConfig {
        poll_interval: Duration::from_millis(50),
        check_interval: Duration::from_millis(300),
        ..Default::default()
    };
    tokio::spawn(quorum_relay::run(
        env.db.pool.clone(),
        env.js.clone(),
        config,
        env.shutdown.clone(),
    ))
}

fn data(e: &quorum_domain::Event) -> String {
    String::from_utf8(e.data.clone().unwrap_or_default().to_vec()).unwrap()
}

#[tokio::test]
async fn every_event_is_relayed_once_in_stream_order() -> anyhow::Result<()> {
    let env = env().await?;
    let relay = start_relay(&env);
    let mut writers = Vec::new();
    for w in 0..4 {
        let store = env.store.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..50 {
                let s = StreamId::parse(format!("test/s{}", i % 5)).unwrap();
                let e = test_event("acme", &s, &format!("{w}-{i}"));
                store.append(&s, ExpectedVersion::Any, &[e]).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await?;
    }
    wait_until("all relayed", DEADLINE, || async {
        stream_len(&env.js).await >= 200
    })
    .await?;
    let messages = relayed(&env.js).await?;
    assert_eq!(messages.len(), 200);
    // Per stream, the relayed order is the version order.
    let mut by_stream: HashMap<String, Vec<String>> = HashMap::new();
    for m in &messages {
        by_stream
            .entry(m.event.subject.clone().unwrap())
            .or_default()
            .push(m.event.id.clone());
    }
    for (stream, ids) in by_stream {
        let stored: Vec<String> = env
            .store
            .read_stream(&StreamId::parse(stream)?, 1, 1000)
            .await?
            .into_iter()
            .map(|e| e.event.id)
            .collect();
        assert_eq!(ids, stored);
    }
    let subject = &messages[0];
    assert!(subject.event.tenant.is_some());
    env.shutdown.cancel();
    relay.await?;
    Ok(())
}

#[tokio::test]
async fn version_two_waits_for_version_one_when_commit_order_inverts_them() -> anyhow::Result<()> {
    let env = env().await?;
    let relay = start_relay(&env);
    let s = StreamId::parse("test/inverted")?;
    let pool = &env.db.pool;

    // H takes a transaction id first, as a handler that writes before it appends does.
    let mut h = pool.begin().await?;
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *h)
        .await?;
    // L, a long transaction, takes the next id and stays open: it holds the watermark.
    let mut l = pool.begin().await?;
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *l)
        .await?;
    // W appends version 1 with a later id and commits.
    env.store
        .append(
            &s,
            ExpectedVersion::NoStream,
            &[test_event("acme", &s, "v1")],
        )
        .await?;
    // H appends version 2 and commits: its id is below the watermark, version 1's is not.
    EventStore::append_in(
        &mut h,
        &s,
        ExpectedVersion::Exact(1),
        &[test_event("acme", &s, "v2")],
    )
    .await?;
    h.commit().await?;
    let other = StreamId::parse("test/other")?;

    // Without hold-back the relay would publish v2 now. It must publish nothing of the stream.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let early: Vec<String> = relayed(&env.js)
        .await?
        .iter()
        .filter(|m| m.event.subject.as_deref() == Some(s.as_str()))
        .map(|m| data(&m.event))
        .collect();
    assert!(
        early.is_empty(),
        "published {early:?} before its predecessor"
    );

    l.commit().await?;
    env.store
        .append(
            &other,
            ExpectedVersion::NoStream,
            &[test_event("acme", &other, "later")],
        )
        .await?;
    wait_until("both versions relayed", DEADLINE, || async {
        stream_len(&env.js).await >= 3
    })
    .await?;
    let order: Vec<String> = relayed(&env.js)
        .await?
        .iter()
        .filter(|m| m.event.subject.as_deref() == Some(s.as_str()))
        .map(|m| data(&m.event))
        .collect();
    assert_eq!(order, ["v1", "v2"]);
    env.shutdown.cancel();
    relay.await?;
    Ok(())
}

#[tokio::test]
async fn after_nats_loses_its_store_the_relay_republishes_from_postgres() -> anyhow::Result<()> {
    let mut env = env().await?;
    let relay = start_relay(&env);
    for i in 0..30 {
        let s = StreamId::parse(format!("test/r{}", i % 3))?;
        let batch: Vec<_> = (0..10)
            .map(|j| test_event("acme", &s, &format!("{i}-{j}")))
            .collect();
        env.store.append(&s, ExpectedVersion::Any, &batch).await?;
    }
    wait_until("all relayed", DEADLINE, || async {
        stream_len(&env.js).await >= 300
    })
    .await?;

    env.nats.stop().await?;
    std::fs::remove_dir_all(env.nats.store_dir())?;
    env.nats.start_again().await?;

    wait_until("the relay refilled the stream", DEADLINE * 2, || async {
        stream_len(&env.js).await >= 300
    })
    .await?;
    let s = StreamId::parse("test/after")?;
    env.store
        .append(
            &s,
            ExpectedVersion::NoStream,
            &[test_event("acme", &s, "after")],
        )
        .await?;
    wait_until("new events flow again", DEADLINE, || async {
        stream_len(&env.js).await >= 301
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = relayed(&env.js).await?;
    let ids: std::collections::HashSet<_> = messages.iter().map(|m| m.event.id.clone()).collect();
    assert_eq!((messages.len(), ids.len()), (301, 301));
    let republished: i64 = sqlx::query_scalar("SELECT stream_seq FROM relay_checkpoints")
        .fetch_one(&env.db.pool)
        .await?;
    assert_eq!(republished, 301);
    env.shutdown.cancel();
    relay.await?;
    Ok(())
}

/// A store wiped while the relay is idle, and the stream made anew by another service binding
/// to it (a consumer does at once) before the relay publishes again: the relay's next message
/// lands at sequence 1, ahead of nothing. The relay must see a stream behind its checkpoint and
/// publish everything again, not resume after that one message.
#[tokio::test]
async fn a_stream_made_anew_by_someone_else_is_refilled_from_the_start() -> anyhow::Result<()> {
    let mut env = env().await?;
    let relay = start_relay(&env);
    for i in 0..20 {
        let s = StreamId::parse(format!("test/m{}", i % 2))?;
        let batch: Vec<_> = (0..10)
            .map(|j| test_event("acme", &s, &format!("m{i}-{j}")))
            .collect();
        env.store.append(&s, ExpectedVersion::Any, &batch).await?;
    }
    wait_until("all relayed", DEADLINE, || async {
        stream_len(&env.js).await >= 200
    })
    .await?;
    // The checkpoint must have recorded how far the stream got before the wipe.
    wait_until("the checkpoint saved", DEADLINE, || async {
        sqlx::query_scalar::<_, i64>("SELECT stream_seq FROM relay_checkpoints")
            .fetch_optional(&env.db.pool)
            .await
            .ok()
            .flatten()
            .is_some_and(|seq| seq >= 200)
    })
    .await?;

    env.nats.stop().await?;
    std::fs::remove_dir_all(env.nats.store_dir())?;
    env.nats.start_again().await?;
    wait_until("the streams made anew", DEADLINE, || async {
        quorum_bus::find_or_create_streams(&env.js).await.is_ok()
    })
    .await?;
    let s = StreamId::parse("test/after-remade")?;
    env.store
        .append(
            &s,
            ExpectedVersion::NoStream,
            &[test_event("acme", &s, "after-remade")],
        )
        .await?;
    wait_until("everything published again", DEADLINE * 2, || async {
        stream_len(&env.js).await >= 201
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = relayed(&env.js).await?;
    let ids: std::collections::HashSet<_> = messages.iter().map(|m| m.event.id.clone()).collect();
    assert_eq!((messages.len(), ids.len()), (201, 201));
    env.shutdown.cancel();
    relay.await?;
    Ok(())
}

#[tokio::test]
async fn a_clean_nats_restart_republishes_nothing() -> anyhow::Result<()> {
    let mut env = env().await?;
    let relay = start_relay(&env);
    let s = StreamId::parse("test/restart")?;
    let batch: Vec<_> = (0..50)
        .map(|i| test_event("acme", &s, &i.to_string()))
        .collect();
    env.store
        .append(&s, ExpectedVersion::NoStream, &batch)
        .await?;
    wait_until("relayed", DEADLINE, || async {
        stream_len(&env.js).await >= 50
    })
    .await?;

    // Stopped cleanly, JetStream keeps its store: the relay must resume after the stream's last
    // message, not from its own (possibly older) checkpoint, and not from the start.
    env.nats.stop().await?;
    env.nats.start_again().await?;
    let more: Vec<_> = (50..60)
        .map(|i| test_event("acme", &s, &i.to_string()))
        .collect();
    env.store
        .append(&s, ExpectedVersion::Exact(50), &more)
        .await?;
    wait_until("new events relayed", DEADLINE * 2, || async {
        stream_len(&env.js).await >= 60
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let order: Vec<String> = relayed(&env.js)
        .await?
        .iter()
        .map(|m| data(&m.event))
        .collect();
    let expected: Vec<String> = (0..60).map(|i| i.to_string()).collect();
    assert_eq!(order, expected, "each event once, in order");
    env.shutdown.cancel();
    relay.await?;
    Ok(())
}
