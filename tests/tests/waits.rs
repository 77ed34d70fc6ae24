//! Waits woken by the consensus (ADR 22): ingest, the relay, the fan-out and the consensus with
//! its `queries` projection run in this process, against real NATS and Postgres, with the waits'
//! safety re-check set an hour apart, so an answer that comes at all came by a notification.

use std::time::Duration;

use quorum_runtime::{Readiness, Shutdown};
use quorum_testkit::DEADLINE;
use serde_json::{Value, json};

/// Far longer than the test may take: nothing here is answered by the safety re-check.
const RECHECK: Duration = Duration::from_secs(3600);

/// Server-sent events, read one at a time.
struct Events {
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl Events {
    /// The next (event, data); None when the stream ended.
    async fn next(&mut self) -> anyhow::Result<Option<(String, Value)>> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let bytes: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8_lossy(&bytes);
                let (mut kind, mut data) = (String::new(), String::new());
                for line in block.lines() {
                    if let Some(k) = line.strip_prefix("event:") {
                        kind = k.trim().to_owned();
                    } else if let Some(d) = line.strip_prefix("data:") {
                        data.push_str(d.trim_start());
                    }
                }
                if !kind.is_empty() {
                    return Ok(Some((kind, serde_json::from_str(&data)?)));
                }
                continue;
            }
            match self.response.chunk().await? {
                Some(c) => self.buffer.extend_from_slice(&c),
                None => return Ok(None),
            }
        }
    }
}

#[tokio::test]
async fn a_wait_and_a_watch_are_woken_by_the_consensus_not_by_a_timer() -> anyhow::Result<()> {
    let env = quorum_e2e::env().await?;
    let shutdown = Shutdown::new();
    let readiness = Readiness::new();
    let mut config = quorum_ingest::IngestConfig::default();
    config.common.nats_url = env.nats.url();
    config.common.database_url = env.db.url.clone();
    config.http_addr = "127.0.0.1:0".parse()?;
    config.run_relay = true;
    config.waits.recheck = RECHECK;
    let ingest = quorum_ingest::start(&config, &shutdown, &readiness)
        .await?
        .http_addr;
    let experts = quorum_experts::default_experts();
    let names = experts.iter().map(|e| e.name.clone()).collect();
    // The consensus and its projection run; the experts are not asked yet, so the query stays
    // pending until the test lets them answer.
    quorum_consensus::start(
        env.db.pool.clone(),
        env.js.clone(),
        names,
        Default::default(),
        &shutdown,
        &readiness,
    );
    let key = quorum_auth::create(
        &env.db.pool,
        &quorum_domain::TenantId::new("acme")?,
        &[quorum_auth::Role::Publisher],
        None,
    )
    .await?
    .key;
    let http = quorum_http_client::client();
    let submitted: Value = http
        .post(format!("http://{ingest}/v1/queries"))
        .bearer_auth(&key)
        .json(&json!({"question": "What is the capital of France?", "decide": "all"}))
        .send()
        .await?
        .json()
        .await?;
    let id = submitted["query_id"]
        .as_str()
        .expect("a query id")
        .to_owned();

    let response = http
        .get(format!("http://{ingest}/v1/queries/{id}/watch"))
        .bearer_auth(&key)
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let mut watch = Events {
        response,
        buffer: Vec::new(),
    };
    // The projection's row for the submission: the first event, pending (nobody answered yet).
    let (kind, first) = tokio::time::timeout(DEADLINE, watch.next())
        .await??
        .expect("a first event");
    assert_eq!(kind, "progress", "{first}");
    assert_eq!(first["status"], "pending", "{first}");
    // A wait opened while the query is pending, too.
    let waited = tokio::spawn({
        let (http, key) = (http.clone(), key.clone());
        let url = format!("http://{ingest}/v1/queries/{id}?wait=60s");
        async move {
            http.get(url)
                .bearer_auth(key)
                .send()
                .await?
                .json::<Value>()
                .await
        }
    });

    // Now the experts answer.
    quorum_expert_fanout::start(
        env.db.pool.clone(),
        env.js.clone(),
        experts,
        &shutdown,
        &readiness,
    );
    // Each change comes as it is stored: results (one or several per event, as the projection
    // writes them together), then the decision with every result.
    let mut seen = 0;
    let decided = loop {
        let (kind, row) = tokio::time::timeout(DEADLINE, watch.next())
            .await??
            .expect("the watch goes on until the decision");
        let experts = row["experts"].as_object().map_or(0, |m| m.len());
        assert!(experts >= seen, "results only ever add: {row}");
        seen = experts;
        if kind == "decided" {
            break row;
        }
        assert_eq!(kind, "progress");
    };
    assert_eq!(decided["status"], "reached", "{decided}");
    assert_eq!(decided["consensus"]["answer"], "Paris", "{decided}");
    assert_eq!(seen, 3, "{decided}");
    assert!(
        tokio::time::timeout(DEADLINE, watch.next())
            .await??
            .is_none()
    );
    // The wait was answered with the decision, within its 60 s and with no re-check in an hour:
    // the projection's notification woke it.
    let waited = tokio::time::timeout(DEADLINE, waited).await???;
    assert_eq!(waited["status"], "reached", "{waited}");
    assert_eq!(waited["consensus"], decided["consensus"]);
    shutdown.cancel();
    Ok(())
}
