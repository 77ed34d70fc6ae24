//! The store going away: dead idle connections replaced, an unreachable store holding messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use quorum_domain::StreamId;
use quorum_e2e::{RecordingHandler, consumer_idle, handled_count, publish, test_event};
use quorum_runtime::consumer::{self, Delivery, Handler, Outcome};
use quorum_testkit::{DEADLINE, wait_until};

use quorum_e2e::env;

use super::{config, start};

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
