//! Failures: poison and undecodable messages park, flaky ones retry, a panic is a failed attempt.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use quorum_domain::StreamId;
use quorum_e2e::{
    RecordingHandler, SOURCE_TYPE, consumer_idle, handled_count, publish, test_event,
};
use quorum_runtime::consumer::{Delivery, Handler, Outcome};
use quorum_testkit::{DEADLINE, wait_until};

use quorum_e2e::env;

use super::{config, start};

/// Records like [`RecordingHandler`] but fails the first `fail_first` deliveries of each message, and
/// every delivery of a message whose data is "poison" (dead) or "always-retry" (retry).
struct Flaky {
    inner: RecordingHandler,
    fail_first: u32,
    calls: Arc<AtomicU32>,
}

impl Handler for Flaky {
    async fn handle(&self, d: &Delivery) -> Outcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match d.event.data.as_deref() {
            Some(b"poison") => return Outcome::dead("poison pill"),
            Some(b"always-retry") => {
                return Outcome::retry(Duration::from_millis(50), "still broken");
            }
            Some(b"always-panic") => panic!("handler bug on delivery {}", d.delivered),
            Some(b"panic-once") if d.delivered == 1 => panic!("first delivery trips a bug"),
            _ => {}
        }
        if d.delivered <= self.fail_first {
            return Outcome::retry(
                Duration::from_millis(50),
                format!("flaky attempt {}", d.delivered),
            );
        }
        self.inner.handle(d).await
    }
}

#[tokio::test]
async fn poison_and_undecodable_messages_are_parked_then_terminated() -> anyhow::Result<()> {
    let env = env().await?;
    let s = StreamId::parse("test/p")?;
    publish(&env.js, &test_event("acme", &s, "poison")).await?;
    env.js
        .publish(
            quorum_bus::subjects::event(&quorum_domain::TenantId::new("acme")?, SOURCE_TYPE),
            "not a cloudevent".into(),
        )
        .await?
        .await?;
    publish(&env.js, &test_event("acme", &s, "fine")).await?;
    let calls = Arc::new(AtomicU32::new(0));
    let handler = Flaky {
        inner: RecordingHandler::new(env.db.pool.clone(), "c-poison"),
        fail_first: 0,
        calls: calls.clone(),
    };
    let task = start(&env, config("c-poison"), handler);

    wait_until("both parked and the good one handled", DEADLINE, || async {
        let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
        parked == 2
            && handled_count(&env.db.pool).await.unwrap().0 == 1
            && consumer_idle(&env.js, "c-poison").await
    })
    .await?;
    let rows: Vec<(String, String, i32, serde_json::Value)> = sqlx::query_as(
        "SELECT consumer, subject, attempts, errors FROM dead_letters ORDER BY stream_seq",
    )
    .fetch_all(&env.db.pool)
    .await?;
    assert_eq!(rows[0].0, "c-poison");
    assert_eq!(rows[0].2, 1, "a dead outcome parks at once");
    assert!(rows[0].3.to_string().contains("poison pill"));
    assert!(rows[1].3.to_string().contains("undecodable"));
    // Terminated, not redelivered: the handler saw the poison message once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The notices went to the DLQ stream.
    let dlq = env
        .js
        .get_stream(quorum_bus::DLQ_STREAM)
        .await?
        .get_info()
        .await?
        .state
        .messages;
    assert_eq!(dlq, 2);
    env.shutdown.cancel();
    task.await?;
    Ok(())
}

#[tokio::test]
async fn a_message_that_fails_a_few_times_is_handled_once_and_one_that_keeps_failing_is_parked()
-> anyhow::Result<()> {
    let env = env().await?;
    let s = StreamId::parse("test/flaky")?;
    publish(&env.js, &test_event("acme", &s, "eventually")).await?;
    publish(
        &env.js,
        &test_event("acme", &StreamId::parse("test/broken")?, "always-retry"),
    )
    .await?;
    let calls = Arc::new(AtomicU32::new(0));
    let handler = Flaky {
        inner: RecordingHandler::new(env.db.pool.clone(), "c-flaky"),
        fail_first: 2,
        calls,
    };
    let task = start(&env, config("c-flaky"), handler);

    wait_until(
        "handled once and the broken one parked",
        DEADLINE,
        || async {
            let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
                .fetch_one(&env.db.pool)
                .await
                .unwrap();
            parked == 1
                && handled_count(&env.db.pool).await.unwrap().0 == 1
                && consumer_idle(&env.js, "c-flaky").await
        },
    )
    .await?;
    assert_eq!(handled_count(&env.db.pool).await?, (1, 1));
    let (attempts, errors): (i32, serde_json::Value) =
        sqlx::query_as("SELECT attempts, errors FROM dead_letters")
            .fetch_one(&env.db.pool)
            .await?;
    // Parked after max_deliver (4) deliveries, with the error of every attempt.
    assert_eq!(attempts, 4);
    assert_eq!(errors.as_array().map(Vec::len), Some(4), "{errors}");
    env.shutdown.cancel();
    task.await?;
    Ok(())
}

/// A panic is a failed attempt like any error: recorded with its message, retried, parked after
/// `max_deliver`; the consumer itself goes on.
#[tokio::test]
async fn a_handler_panic_is_a_failed_attempt_and_the_consumer_goes_on() -> anyhow::Result<()> {
    let env = env().await?;
    publish(
        &env.js,
        &test_event("acme", &StreamId::parse("test/once")?, "panic-once"),
    )
    .await?;
    publish(
        &env.js,
        &test_event("acme", &StreamId::parse("test/bug")?, "always-panic"),
    )
    .await?;
    let handler = Flaky {
        inner: RecordingHandler::new(env.db.pool.clone(), "c-panic"),
        fail_first: 0,
        calls: Arc::new(AtomicU32::new(0)),
    };
    let task = start(&env, config("c-panic"), handler);

    wait_until("one handled, one parked", DEADLINE, || async {
        let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
            .fetch_one(&env.db.pool)
            .await
            .unwrap();
        parked == 1
            && handled_count(&env.db.pool).await.unwrap().0 == 1
            && consumer_idle(&env.js, "c-panic").await
    })
    .await?;
    let (attempts, errors): (i32, serde_json::Value) =
        sqlx::query_as("SELECT attempts, errors FROM dead_letters")
            .fetch_one(&env.db.pool)
            .await?;
    assert_eq!(attempts, 4, "parked after max_deliver deliveries");
    let errors = errors.to_string();
    assert!(
        errors.contains("handler panicked: handler bug on delivery 4"),
        "{errors}"
    );
    let recorded: Vec<String> =
        sqlx::query_scalar("SELECT error FROM failed_attempts WHERE consumer = 'c-panic'")
            .fetch_all(&env.db.pool)
            .await?;
    assert!(
        recorded
            .iter()
            .any(|e| e == "handler panicked: first delivery trips a bug"),
        "the panic of the message handled on its second delivery is recorded: {recorded:?}"
    );
    env.shutdown.cancel();
    task.await?;
    Ok(())
}
