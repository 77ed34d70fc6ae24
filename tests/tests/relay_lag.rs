//! The relay's lag while a transaction is left open: events committed after it started wait behind
//! the watermark (docs/adr/0002), and `quorum_relay_lag_seconds` must rise while they wait, then
//! fall once the transaction ends and they are published. The old gauge read 0 in exactly this
//! case: the relay had nothing readable, so it looked caught up.

use std::time::Duration;

use quorum_domain::StreamId;
use quorum_e2e::{env, stream_len, test_event};
use quorum_event_store::ExpectedVersion;
use quorum_relay::RelayConfig;
use quorum_runtime::metrics as names;
use quorum_testkit::{DEADLINE, wait_until};
use sqlx::Connection;

/// A gauge's value in the recorder's Prometheus text.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn relay_lag_rises_while_a_transaction_holds_the_watermark_then_falls() -> anyhow::Result<()>
{
    let metrics = quorum_runtime::metrics::install_recorder();
    let env = env().await?;
    let relay = tokio::spawn(quorum_relay::run(
        env.db.pool.clone(),
        env.js.clone(),
        RelayConfig {
            poll_interval: Duration::from_millis(50),
            ..Default::default()
        },
        env.shutdown.clone(),
    ));
    let stream = StreamId::parse("test/lag")?;
    env.store
        .append(
            &stream,
            ExpectedVersion::Any,
            &[test_event("acme", &stream, "before")],
        )
        .await?;
    wait_until("the first event relayed", DEADLINE, || async {
        stream_len(&env.js).await == 1
    })
    .await?;

    // An open transaction with a transaction id: every later commit waits behind it.
    let mut holder = sqlx::PgConnection::connect(&env.db.url).await?;
    let mut tx = holder.begin().await?;
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await?;
    for i in 0..3 {
        env.store
            .append(
                &stream,
                ExpectedVersion::Any,
                &[test_event("acme", &stream, &format!("held {i}"))],
            )
            .await?;
    }
    let risen = wait_until("the lag to show the held events", DEADLINE, || async {
        let text = metrics.render();
        let lag = gauge(&text, names::RELAY_LAG_SECONDS)?;
        let held = gauge(&text, names::RELAY_WATERMARK_HELD_EVENTS)?;
        (lag >= 1.0 && held == 3.0).then_some(lag)
    })
    .await?;
    assert_eq!(stream_len(&env.js).await, 1, "nothing held is published");

    tx.rollback().await?;
    wait_until("the held events relayed", DEADLINE, || async {
        stream_len(&env.js).await == 4
    })
    .await?;
    wait_until("the lag to fall", DEADLINE, || async {
        let text = metrics.render();
        let lag = gauge(&text, names::RELAY_LAG_SECONDS)?;
        let held = gauge(&text, names::RELAY_WATERMARK_HELD_EVENTS)?;
        (lag < risen && held == 0.0).then_some(())
    })
    .await?;
    env.shutdown.cancel();
    relay.await?;
    Ok(())
}
