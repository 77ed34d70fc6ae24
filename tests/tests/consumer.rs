//! The consumer runtime against real NATS and Postgres: dead letters, retries, per-stream order.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use quorum_domain::StreamId;
use quorum_e2e::{
    RecordingHandler, SOURCE_TYPE, consumer_idle, handled_count, handled_stream, publish,
    test_event,
};
use quorum_event_store::EventStore;
use quorum_runtime::consumer::{self, ConsumerConfig, Delivery, Handler, Outcome};
use quorum_testkit::{DEADLINE, wait_until};

use quorum_e2e::{Env, env};

fn config(name: &str) -> ConsumerConfig {
    let mut c = ConsumerConfig::new(
        name,
        vec![quorum_bus::subjects::event_type_filter(SOURCE_TYPE)],
    );
    c.max_deliver = 4;
    c.concurrency = 8;
    c
}

fn start<H: Handler>(env: &Env, config: ConsumerConfig, handler: H) -> tokio::task::JoinHandle<()> {
    let (js, pool, shutdown) = (env.js.clone(), env.db.pool.clone(), env.shutdown.clone());
    tokio::spawn(async move {
        consumer::run(js, pool, config, Arc::new(handler), shutdown, || {})
            .await
            .expect("consumer runs");
    })
}

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

/// Counts what the store did to a [`RecordingHandler`]: how often it was unreachable, and the most
/// deliveries any message took.
struct Counting {
    inner: RecordingHandler,
    unavailable: Arc<AtomicU32>,
    most_delivered: Arc<AtomicU32>,
}

impl Handler for Counting {
    async fn handle(&self, d: &Delivery) -> Outcome {
        self.most_delivered.fetch_max(d.delivered, Ordering::SeqCst);
        let outcome = self.inner.handle(d).await;
        if matches!(outcome, Outcome::Unavailable { .. }) {
            self.unavailable.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }
}

/// Postgres restarted (here: every connection of the pool ended by the server) leaves the pool's
/// idle connections dead. Before, each failed the next statement that used it, one consumer
/// delivery each, and a message parked after `max_deliver` of them (seen in `quorum chaos`). Now a
/// connection idle for a second or more is pinged on checkout and replaced: the messages are
/// handled on their first delivery, and no handler even sees the store fail.
#[tokio::test]
async fn dead_idle_connections_are_replaced_not_failed() -> anyhow::Result<()> {
    let env = env().await?;
    // Open many connections, then have the server end every one of them.
    let opened: Vec<_> = (0..12)
        .map(|_| sqlx::query("SELECT pg_sleep(0.2)").execute(&env.db.pool))
        .collect();
    for r in futures::future::join_all(opened).await {
        r?;
    }
    wait_until("the pool keeps its connections", DEADLINE, || async {
        env.db.pool.num_idle() >= 10
    })
    .await?;
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&env.db.url).await?;
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await?;
    anyhow::ensure!(cut.len() >= 10, "cut {} connections", cut.len());
    // Idle long enough to be pinged, as connections are across any restart.
    tokio::time::sleep(quorum_event_store::PING_AFTER_IDLE).await;

    for i in 0..3 {
        let s = StreamId::parse(format!("test/cut-{i}"))?;
        publish(&env.js, &test_event("acme", &s, "fine")).await?;
    }
    let (unavailable, most_delivered) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let handler = Counting {
        inner: RecordingHandler::new(env.db.pool.clone(), "c-cut"),
        unavailable: unavailable.clone(),
        most_delivered: most_delivered.clone(),
    };
    let mut config = config("c-cut");
    config.max_deliver = 2;
    config.concurrency = 1;
    let task = start(&env, config, handler);

    wait_until("all three handled", DEADLINE, || async {
        handled_count(&env.db.pool).await.unwrap_or((0, 0)).0 == 3
            && consumer_idle(&env.js, "c-cut").await
    })
    .await?;
    assert_eq!(
        unavailable.load(Ordering::SeqCst),
        0,
        "a dead connection was used"
    );
    assert_eq!(most_delivered.load(Ordering::SeqCst), 1, "no redelivery");
    let (letters, attempts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM failed_attempts)",
    )
    .fetch_one(&env.db.pool)
    .await?;
    assert_eq!((letters, attempts), (0, 0));
    env.shutdown.cancel();
    task.await?;
    Ok(())
}

/// Postgres unreachable for longer than a message's retries would last: every message is held,
/// not failed, and once the store is back each is handled on its first delivery, with no failed
/// attempt and no dead letter. Before, each message was retried `max_deliver` times a second
/// apart and then parked, though nothing was wrong with it.
#[tokio::test]
async fn an_unreachable_store_holds_messages_until_it_is_back() -> anyhow::Result<()> {
    let env = env().await?;
    let options = (*env.db.pool.connect_options()).clone();
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("no address for the test database"))?;
    let gate = quorum_testkit::Gate::start(target).await?;
    let pool = quorum_event_store::pool_options(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect_with(options.port(gate.addr().port()))
        .await?;
    for i in 0..3 {
        let s = StreamId::parse(format!("test/held-{i}"))?;
        publish(&env.js, &test_event("acme", &s, "fine")).await?;
    }
    gate.cut();
    let (unavailable, most_delivered) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let handler = Counting {
        inner: RecordingHandler::new(pool.clone(), "c-held"),
        unavailable: unavailable.clone(),
        most_delivered: most_delivered.clone(),
    };
    let mut config = config("c-held");
    config.max_deliver = 2;
    let (js, shutdown) = (env.js.clone(), env.shutdown.clone());
    let task = tokio::spawn(async move {
        consumer::run(js, pool, config, Arc::new(handler), shutdown, || {})
            .await
            .expect("consumer runs");
    });
    // Three messages, each found the store unreachable more often than max_deliver allows.
    wait_until("every message held three times", DEADLINE, || async {
        unavailable.load(Ordering::SeqCst) >= 9
    })
    .await?;
    gate.open();
    wait_until("all three handled", DEADLINE, || async {
        handled_count(&env.db.pool).await.unwrap_or((0, 0)).0 == 3
            && consumer_idle(&env.js, "c-held").await
    })
    .await?;
    assert_eq!(most_delivered.load(Ordering::SeqCst), 1, "no redelivery");
    let (letters, attempts): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM dead_letters), (SELECT count(*) FROM failed_attempts)",
    )
    .fetch_one(&env.db.pool)
    .await?;
    assert_eq!((letters, attempts), (0, 0));
    env.shutdown.cancel();
    task.await?;
    Ok(())
}
