//! `quorum status` shows each expert's circuit breaker as the fan-out reports it: an expert that
//! keeps failing shows `open`, its healthy peer `closed`, and a stopped fan-out's rows go away.

use std::time::Duration;

use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use quorum_experts::scripted::ScriptedConfig;
use quorum_experts::{ExpertConfig, ProviderConfig};
use quorum_runtime::{Readiness, Shutdown};
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::Value;
use tokio::process::Command;

fn expert(name: &str, failure_rate: f64) -> ExpertConfig {
    let mut e = quorum_experts::default_experts().remove(0);
    e.name = name.into();
    e.provider = ProviderConfig::Scripted(ScriptedConfig {
        failure_rate,
        ..Default::default()
    });
    e.breaker.failures = 1;
    e.breaker.cool_down = Duration::from_secs(600);
    e
}

async fn status(nats: &str, db: &str) -> anyhow::Result<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_quorum"))
        .args(["--nats-url", nats, "--database-url", db, "status", "--json"])
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn state_of(status: &Value, expert: &str) -> Option<String> {
    status["breakers"]
        .as_array()?
        .iter()
        .find(|b| b["expert"] == expert)
        .and_then(|b| b["state"].as_str().map(str::to_owned))
}

#[tokio::test]
async fn status_shows_an_open_breaker_and_forgets_a_stopped_fanout() -> anyhow::Result<()> {
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    let shutdown = Shutdown::new();
    shutdown.spawn(quorum_relay::run(
        db.pool.clone(),
        js.clone(),
        Default::default(),
        shutdown.token(),
    ));
    quorum_expert_fanout::start(
        db.pool.clone(),
        js,
        vec![expert("broken", 1.0), expert("fine", 0.0)],
        &shutdown,
        &Readiness::new(),
    );
    let stream = StreamId::new("query", uuid::Uuid::now_v7().to_string())?;
    let query = Event::new(
        "/test",
        types::QUERY_SUBMITTED,
        stream.clone(),
        TenantId::new("acme")?,
        Bytes::from_static(br#"{"question":"Anyone there?"}"#),
    );
    EventStore::new(db.pool.clone())
        .append(&stream, ExpectedVersion::NoStream, &[query])
        .await?;

    let (nats_url, db_url) = (nats.url(), db.url.clone());
    let shown = wait_until("status to show the open breaker", DEADLINE, || async {
        let s = status(&nats_url, &db_url).await.ok()?;
        (state_of(&s, "broken").as_deref() == Some("open")).then_some(s)
    })
    .await?;
    assert_eq!(state_of(&shown, "fine").as_deref(), Some("closed"));

    shutdown.cancel();
    shutdown.wait(DEADLINE).await?;
    let after = status(&nats_url, &db_url).await?;
    assert_eq!(after["breakers"], serde_json::json!([]), "{after}");
    Ok(())
}
