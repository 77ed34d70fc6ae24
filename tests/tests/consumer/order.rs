//! Order: one stream's events in order under concurrency, a slow handler kept alive, a busy
//! stream holding up only its own messages.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use quorum_domain::StreamId;
use quorum_e2e::{
    RecordingHandler, consumer_idle, handled_count, handled_stream, publish, test_event,
};
use quorum_event_store::EventStore;
use quorum_runtime::consumer::{Delivery, Handler, Outcome};
use quorum_testkit::{DEADLINE, wait_until};

use quorum_e2e::env;

use super::{config, start};

#[tokio::test]
async fn one_streams_events_are_handled_in_order_with_concurrency() -> anyhow::Result<()> {
    let env = env().await?;
    let streams: Vec<StreamId> = (0..8)
        .map(|i| StreamId::parse(format!("test/s{i}")).unwrap())
        .collect();
    for v in 0..25 {
        for s in &streams {
            publish(&env.js, &test_event("acme", s, &format!("{v:03}"))).await?;
        }
    }
    let mut handler = RecordingHandler::new(env.db.pool.clone(), "c-order");
    handler.delay = Duration::from_millis(2);
    let mut cfg = config("c-order");
    cfg.concurrency = 6;
    let task = start(&env, cfg, handler);
    wait_until("all handled", DEADLINE, || async {
        handled_count(&env.db.pool).await.unwrap().0 == 200
    })
    .await?;
    let store = EventStore::new(env.db.pool.clone());
    for s in &streams {
        let handled = store.read_stream(&handled_stream(s), 1, 100).await?;
        let order: Vec<String> = handled
            .iter()
            .map(|e| String::from_utf8(e.event.data.clone().unwrap().to_vec()).unwrap())
            .collect();
        let expected: Vec<String> = (0..25).map(|v| format!("{v:03}")).collect();
        assert_eq!(order, expected, "stream {s} handled out of order");
    }
    env.shutdown.cancel();
    task.await?;
    Ok(())
}

#[tokio::test]
async fn a_handler_slower_than_ack_wait_is_kept_alive_and_runs_once() -> anyhow::Result<()> {
    let env = env().await?;
    publish(
        &env.js,
        &test_event("acme", &StreamId::parse("test/slow")?, "slow"),
    )
    .await?;
    let mut handler = RecordingHandler::new(env.db.pool.clone(), "c-slow");
    // Three times ack_wait: without in-progress acks JetStream would redeliver it twice meanwhile.
    handler.delay = Duration::from_millis(3000);
    let mut cfg = config("c-slow");
    cfg.ack_wait = Duration::from_secs(1);
    let task = start(&env, cfg, handler);
    wait_until("handled and acked", DEADLINE, || async {
        handled_count(&env.db.pool).await.unwrap().0 == 1 && consumer_idle(&env.js, "c-slow").await
    })
    .await?;
    assert_eq!(
        quorum_e2e::attempt_count(&env.db.pool).await?,
        1,
        "handled once"
    );
    let info = env
        .js
        .get_stream(quorum_bus::EVENTS_STREAM)
        .await?
        .consumer_info("c-slow")
        .await?;
    assert_eq!(info.delivered.consumer_sequence, 1, "never redelivered");
    env.shutdown.cancel();
    task.await?;
    Ok(())
}

/// Handles `slow/…` streams' messages only once `release` is set, and records every message it
/// finishes, in order.
struct Gate {
    release: Arc<std::sync::atomic::AtomicBool>,
    done: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Handler for Gate {
    async fn handle(&self, d: &Delivery) -> Outcome {
        let data =
            String::from_utf8_lossy(d.event.data.as_deref().unwrap_or_default()).into_owned();
        if data.starts_with("slow") {
            while !self.release.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.done.lock().unwrap().push(data);
        Outcome::Done
    }
}

#[tokio::test]
async fn a_busy_stream_holds_up_only_its_own_messages() -> anyhow::Result<()> {
    let env = env().await?;
    let slow = StreamId::parse("test/slow")?;
    let fast = StreamId::parse("test/fast")?;
    // The slow stream's messages come first, more of them than any one queue held.
    for i in 0..6 {
        publish(&env.js, &test_event("acme", &slow, &format!("slow {i}"))).await?;
    }
    for i in 0..6 {
        publish(&env.js, &test_event("acme", &fast, &format!("fast {i}"))).await?;
    }
    let gate = Gate {
        release: Default::default(),
        done: Default::default(),
    };
    let (release, done) = (gate.release.clone(), gate.done.clone());
    start(&env, config("c-busy"), gate);
    // Every other stream's messages are handled while the slow one is still on its first.
    wait_until("the fast stream to be handled", DEADLINE, || async {
        (done.lock().unwrap().len() == 6).then_some(())
    })
    .await?;
    assert!(done.lock().unwrap().iter().all(|d| d.starts_with("fast")));
    release.store(true, Ordering::SeqCst);
    wait_until("the slow stream to be handled", DEADLINE, || async {
        (done.lock().unwrap().len() == 12).then_some(())
    })
    .await?;
    // Each stream's messages in the order they were published.
    let done = done.lock().unwrap().clone();
    for stream in ["slow", "fast"] {
        let order: Vec<&String> = done.iter().filter(|d| d.starts_with(stream)).collect();
        let expected: Vec<String> = (0..6).map(|i| format!("{stream} {i}")).collect();
        assert_eq!(order, expected.iter().collect::<Vec<_>>());
    }
    env.shutdown.cancel();
    Ok(())
}
