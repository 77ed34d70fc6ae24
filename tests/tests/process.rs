//! Crashes and signals, with the handler or the relay running as a process of its own.

use std::process::Stdio;
use std::time::Duration;

use quorum_domain::StreamId;
use quorum_e2e::{consumer_idle, handled_count, publish, relayed, test_event};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_testkit::{DEADLINE, wait_until};
use tokio::process::{Child, Command};

struct Worker(Child);

impl Worker {
    fn start(nats: &str, db: &str, args: &[&str]) -> anyhow::Result<Self> {
        let child = Command::new(env!("CARGO_BIN_EXE_e2e-worker"))
            .args(["--nats-url", nats, "--database-url", db])
            .args(args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()?;
        Ok(Self(child))
    }

    async fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.0.id().expect("running").to_string();
        let status = Command::new("kill").args([signal, &pid]).status().await?;
        anyhow::ensure!(status.success(), "kill {signal} {pid} failed");
        Ok(())
    }

    async fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        Ok(tokio::time::timeout(DEADLINE, self.0.wait()).await??)
    }
}

async fn setup() -> anyhow::Result<(
    quorum_devstack::NatsServer,
    quorum_testkit::TestDb,
    async_nats::jetstream::Context,
)> {
    let env = quorum_e2e::env().await?;
    Ok((env.nats, env.db, env.js))
}

#[tokio::test]
async fn a_handler_killed_between_commit_and_ack_appends_nothing_twice() -> anyhow::Result<()> {
    let (nats, db, js) = setup().await?;
    publish(
        &js,
        &test_event("acme", &StreamId::parse("test/crash")?, "once"),
    )
    .await?;

    let mut crashing = Worker::start(
        &nats.url(),
        &db.url,
        &["consume", "--consumer", "c-crash", "--crash-after-commit"],
    )?;
    let status = crashing.wait().await?;
    assert!(
        !status.success(),
        "the worker should have died after its commit"
    );
    assert_eq!(
        handled_count(&db.pool).await?,
        (1, 1),
        "the commit happened"
    );
    assert!(
        !consumer_idle(&js, "c-crash").await,
        "the message was not acked"
    );

    let mut healthy = Worker::start(&nats.url(), &db.url, &["consume", "--consumer", "c-crash"])?;
    wait_until("the redelivered message is acked", DEADLINE, || {
        consumer_idle(&js, "c-crash")
    })
    .await?;
    let info = js
        .get_stream(quorum_bus::EVENTS_STREAM)
        .await?
        .consumer_info("c-crash")
        .await?;
    assert!(
        info.delivered.consumer_sequence >= 2,
        "the message was delivered again"
    );
    assert_eq!(
        handled_count(&db.pool).await?,
        (1, 1),
        "the redelivery appended nothing"
    );
    healthy.signal("-TERM").await?;
    assert!(healthy.wait().await?.success());
    Ok(())
}

#[tokio::test]
async fn sigterm_with_100_messages_in_flight_loses_none() -> anyhow::Result<()> {
    let (nats, db, js) = setup().await?;
    for i in 0..100 {
        publish(
            &js,
            &test_event(
                "acme",
                &StreamId::parse(format!("test/m{i}"))?,
                &i.to_string(),
            ),
        )
        .await?;
    }
    let args = [
        "consume",
        "--consumer",
        "c-term",
        "--delay-ms",
        "1500",
        "--concurrency",
        "64",
        "--ack-wait-ms",
        "30000",
    ];
    let mut first = Worker::start(&nats.url(), &db.url, &args)?;
    wait_until("some messages in flight", DEADLINE, || async {
        let info = js
            .get_stream(quorum_bus::EVENTS_STREAM)
            .await
            .unwrap()
            .consumer_info("c-term")
            .await;
        info.is_ok_and(|i| i.num_ack_pending >= 20)
    })
    .await?;
    first.signal("-TERM").await?;
    assert!(first.wait().await?.success(), "drained and exited cleanly");
    let after_first = handled_count(&db.pool).await?.0 as u64;
    assert!(
        after_first > 0,
        "the first worker finished the work it had started"
    );

    let mut second = Worker::start(&nats.url(), &db.url, &["consume", "--consumer", "c-term"])?;
    wait_until("every message handled", DEADLINE * 2, || async {
        handled_count(&db.pool).await.unwrap().0 == 100 && consumer_idle(&js, "c-term").await
    })
    .await?;
    assert_eq!(
        handled_count(&db.pool).await?,
        (100, 100),
        "each handled exactly once"
    );
    // Everything the first worker handled was acked before it exited: no message was handled twice.
    assert_eq!(quorum_e2e::attempt_count(&db.pool).await?, 100, "handlings");
    second.signal("-TERM").await?;
    second.wait().await?;
    Ok(())
}

#[tokio::test]
async fn when_the_relay_leader_is_killed_another_takes_over_and_nothing_is_doubled()
-> anyhow::Result<()> {
    let (nats, db, js) = setup().await?;
    let store = EventStore::new(db.pool.clone());
    let total = 1500;
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..total / 10 {
                let s = StreamId::parse(format!("test/w{}", i % 7)).unwrap();
                let batch: Vec<_> = (0..10)
                    .map(|j| test_event("acme", &s, &format!("{i}-{j}")))
                    .collect();
                store
                    .append(&s, ExpectedVersion::Any, &batch)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let mut leader = Worker::start(&nats.url(), &db.url, &["relay"])?;
    wait_until("the first relay publishes", DEADLINE, || async {
        quorum_e2e::stream_len(&js).await > 100
    })
    .await?;
    let mut follower = Worker::start(&nats.url(), &db.url, &["relay"])?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    leader.signal("-KILL").await?;
    leader.wait().await?;
    writer.await?;

    wait_until("every event relayed", DEADLINE * 2, || async {
        quorum_e2e::stream_len(&js).await >= total
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let messages = relayed(&js).await?;
    let ids: std::collections::HashSet<_> = messages.iter().map(|m| m.event.id.clone()).collect();
    assert_eq!(messages.len() as u64, total, "exactly once by count");
    assert_eq!(ids.len() as u64, total, "exactly once by id");
    let stored: std::collections::HashSet<String> =
        sqlx::query_scalar("SELECT event_id FROM events")
            .fetch_all(&db.pool)
            .await?
            .into_iter()
            .collect();
    assert_eq!(ids, stored);
    follower.signal("-TERM").await?;
    follower.wait().await?;
    Ok(())
}
