//! Hostile input cannot stop or cross the pipeline: a publisher of tenant `other` sends every kind of
//! poison (line breaks and NULs in attributes through each HTTP mode, data at the size limit, a
//! 3,000-character type), and rows that cannot travel are written straight into `events` (an
//! undecodable one, one with a line break in its id). Each is refused at ingest with problem+json
//! naming the attribute, or parked by the relay with its reason; then a query of tenant `default`
//! still reaches its consensus and an ordinary event still reaches JetStream. Real NATS and
//! Postgres; ingest, the relay, fan-out and consensus run in this process as `quorum up` runs them.

use futures::StreamExt;
use quorum_auth::Role;
use quorum_domain::TenantId;
use quorum_experts::ExpertConfig;
use quorum_runtime::{Readiness, Shutdown};
use quorum_testkit::{DEADLINE, wait_until};
use serde_json::{Value, json};

struct Stack {
    env: quorum_e2e::Env,
    ingest: std::net::SocketAddr,
    shutdown: Shutdown,
    http: reqwest::Client,
}

async fn stack() -> anyhow::Result<Stack> {
    let env = quorum_e2e::env().await?;
    let shutdown = Shutdown::new();
    let readiness = Readiness::new();
    let mut config = quorum_ingest::IngestConfig::default();
    config.common.nats_url = env.nats.url();
    config.common.database_url = env.db.url.clone();
    config.http_addr = "127.0.0.1:0".parse()?;
    config.run_relay = true;
    let running = quorum_ingest::start(&config, &shutdown, &readiness).await?;
    let experts: Vec<ExpertConfig> = quorum_experts::default_experts();
    let names = experts.iter().map(|e| e.name.clone()).collect();
    quorum_expert_fanout::start(
        env.db.pool.clone(),
        env.js.clone(),
        experts,
        &shutdown,
        &readiness,
    );
    quorum_consensus::start(
        env.db.pool.clone(),
        env.js.clone(),
        names,
        Default::default(),
        &shutdown,
        &readiness,
    );
    Ok(Stack {
        env,
        ingest: running.http_addr,
        shutdown,
        http: quorum_http_client::client(),
    })
}

impl Stack {
    async fn key(&self, tenant: &str) -> anyhow::Result<String> {
        let roles = [Role::Publisher, Role::Auditor];
        Ok(
            quorum_auth::create(&self.env.db.pool, &TenantId::new(tenant)?, &roles, None)
                .await?
                .key,
        )
    }

    async fn post(
        &self,
        key: &str,
        content_type: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self
            .http
            .post(format!("http://{}/v1/events", self.ingest))
            .bearer_auth(key)
            .header("content-type", content_type)
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let is_problem = r
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
        let json: Value = r.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            assert!(is_problem, "{status}: {json}");
        }
        Ok((status, json))
    }

    /// Writes a row into `events` as no Quorum writer would: the store must survive it.
    async fn write_raw(&self, id: &str, attributes: Value, stream: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO events (tenant, stream_id, stream_version, event_id, source, type, data,
                                 attributes)
             VALUES ('other', $1, 1, $2, '/raw', 'com.example.raw', '\\x7b7d', $3)",
        )
        .bind(stream)
        .bind(id)
        .bind(attributes)
        .execute(&self.env.db.pool)
        .await?;
        Ok(())
    }

    async fn parked_by_relay(&self) -> anyhow::Result<Vec<(Option<String>, String)>> {
        let rows: Vec<(Option<String>, Value)> = sqlx::query_as(
            "SELECT event_id, errors FROM dead_letters WHERE consumer = 'relay' ORDER BY stream_seq",
        )
        .fetch_all(&self.env.db.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, errors)| (id, errors[0]["error"].as_str().unwrap_or("").to_owned()))
            .collect())
    }
}

fn binary_headers<'a>(id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut h = vec![
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        ("ce-source", "/shop"),
        ("ce-type", "com.example.order.created"),
    ];
    for (name, value) in extra {
        h.retain(|(n, _)| n != name);
        h.push((name, value));
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_hostile_event_stops_or_reaches_another_tenant() -> anyhow::Result<()> {
    let s = stack().await?;
    let other = s.key("other").await?;
    let default = s.key("default").await?;
    let json = "application/json";

    // Line breaks through binary mode, percent-encoded as the HTTP binding carries them: refused,
    // naming the attribute.
    for (header, attribute) in [
        ("ce-id", "id"),
        ("ce-source", "source"),
        ("ce-type", "type"),
        ("ce-subject", "subject"),
        ("ce-ext", "ext"),
    ] {
        let headers = binary_headers("ok-1", &[(header, "poison%0A1")]);
        let (status, problem) = s.post(&other, json, &headers, "{}").await?;
        assert_eq!(status, 400, "{header}: {problem}");
        assert!(
            problem.to_string().contains(attribute)
                && problem.to_string().contains("control character"),
            "{header}: {problem}"
        );
    }
    // A NUL in a structured event's extension, and in a batch.
    let nul = json!({"specversion": "1.0", "id": "nul-1", "source": "/shop",
                     "type": "com.example.x", "ext": "a\u{0}b", "data": {}});
    let (status, problem) = s
        .post(&other, "application/cloudevents+json", &[], nul.to_string())
        .await?;
    assert_eq!(status, 400, "{problem}");
    assert!(problem.to_string().contains("ext"), "{problem}");
    let (status, _) = s
        .post(
            &other,
            "application/cloudevents-batch+json",
            &[],
            json!([nul]).to_string(),
        )
        .await?;
    assert_eq!(status, 400);
    // A 3,000-character type.
    let long = "t".repeat(3000);
    let headers = binary_headers("long-1", &[("ce-type", long.as_str())]);
    let (status, problem) = s.post(&other, json, &headers, "{}").await?;
    assert_eq!(status, 400, "{problem}");
    assert!(problem.to_string().contains("type"), "{problem}");
    // Data of exactly the configured limit: within max_event_bytes, but over what NATS carries
    // once headers are added; refused, naming the data.
    let max = quorum_ingest::IngestConfig::default()
        .limits
        .max_event_bytes;
    let data = format!("\"{}\"", "x".repeat(max - 2));
    let headers = binary_headers("big-1", &[]);
    let (status, problem) = s.post(&other, json, &headers, data).await?;
    assert_eq!(status, 400, "{problem}");
    assert!(problem.to_string().contains("data"), "{problem}");

    // Quorum's own sources and the replay marker are not upstream's to claim.
    let headers = binary_headers("own-1", &[("ce-source", "/quorum/consensus")]);
    let (status, problem) = s.post(&other, json, &headers, "{}").await?;
    assert_eq!(status, 403, "{problem}");
    assert!(problem.to_string().contains("source"), "{problem}");
    let headers = binary_headers("replay-1", &[("ce-replayof", "x")]);
    let (status, problem) = s.post(&other, json, &headers, "{}").await?;
    assert_eq!(status, 403, "{problem}");
    assert!(problem.to_string().contains("replayof"), "{problem}");
    // A query naming more experts than a panel has is refused before any work.
    let crowd: Vec<String> = (0..10_000).map(|i| format!("e{i}")).collect();
    let refused = s
        .http
        .post(format!("http://{}/v1/queries", s.ingest))
        .bearer_auth(&other)
        .json(&json!({"question": "q", "experts": crowd}))
        .send()
        .await?;
    assert_eq!(refused.status().as_u16(), 400);
    assert!(refused.text().await?.contains("experts"));

    // Identity is per tenant: the same source and id from two tenants are two events, neither
    // a duplicate of the other, and both reach JetStream.
    let headers = binary_headers("shared-1", &[]);
    let (status, first) = s.post(&other, json, &headers, "{\"n\":1}").await?;
    assert_eq!(status, 202, "{first}");
    let (status, second) = s.post(&default, json, &headers, "{\"n\":2}").await?;
    assert_eq!(status, 202, "{second}");
    assert_eq!(second["events"][0]["duplicate"], false, "{second}");
    for tenant in ["other", "default"] {
        let consumer = s
            .env
            .js
            .get_stream(quorum_bus::EVENTS_STREAM)
            .await?
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                filter_subject: format!("quorum.evt.{tenant}.com.example.order.created"),
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        let got = tokio::time::timeout(DEADLINE, messages.next())
            .await
            .map_err(|_| anyhow::anyhow!("shared-1 of {tenant} never reached JetStream"))?
            .expect("a message")?;
        assert_eq!(
            got.headers
                .as_ref()
                .and_then(|h| h.get("ce-id"))
                .map(|v| v.as_str()),
            Some("shared-1"),
            "{tenant}"
        );
    }

    // Rows no writer of Quorum would make: undecodable attributes, and a header-breaking id.
    s.write_raw("raw-1", json!({"not": "an event"}), "sub-other/raw/1")
        .await?;
    let poison = json!({"specversion": "1.0", "id": "poison\n2", "source": "/raw",
                        "type": "com.example.raw", "tenant": "other"});
    s.write_raw("poison\n2", poison, "sub-other/raw/2").await?;

    // The pipeline goes on for tenant default: a query reaches its consensus.
    let query = s
        .http
        .post(format!("http://{}/v1/queries", s.ingest))
        .bearer_auth(&default)
        .json(&json!({"question": "What is the capital of France?"}))
        .send()
        .await?;
    assert_eq!(query.status().as_u16(), 202);
    let query: Value = query.json().await?;
    let id = query["query_id"].as_str().expect("a query id").to_owned();
    let decided: Value = wait_until("the default tenant's consensus", DEADLINE, || async {
        let r = s
            .http
            .get(format!("http://{}/v1/queries/{id}?wait=5s", s.ingest))
            .bearer_auth(&default)
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        (v["status"] == "reached").then_some(v)
    })
    .await?;
    assert_eq!(decided["consensus"]["answer"], "Paris", "{decided}");
    // Times as every API writes them: RFC 3339, UTC, milliseconds.
    let at = decided["submitted_at"].as_str().unwrap_or_default();
    assert!(at.len() == 24 && at.ends_with('Z'), "{at}");

    // An ordinary event sent afterwards reaches JetStream.
    let headers = binary_headers("after-1", &[("ce-type", "com.example.order.paid")]);
    let (status, answer) = s.post(&default, json, &headers, "{\"n\":1}").await?;
    assert_eq!(status, 202, "{answer}");
    let consumer = s
        .env
        .js
        .get_stream(quorum_bus::EVENTS_STREAM)
        .await?
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            filter_subject: "quorum.evt.default.com.example.order.paid".into(),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let got = tokio::time::timeout(DEADLINE, messages.next())
        .await
        .map_err(|_| anyhow::anyhow!("after-1 never reached JetStream"))?
        .expect("a message")?;
    let headers = got.headers.clone().unwrap_or_default();
    assert_eq!(headers.get("ce-id").map(|v| v.as_str()), Some("after-1"));

    // The two rows are parked by the relay with their reasons, in order; none was dropped.
    let parked = wait_until("the relay to park both rows", DEADLINE, || async {
        let p = s.parked_by_relay().await.ok()?;
        (p.len() == 2).then_some(p)
    })
    .await?;
    assert!(parked[0].1.starts_with("unreadable"), "{parked:?}");
    assert_eq!(parked[1].0.as_deref(), Some("poison\n2"));
    assert!(
        parked[1].1.contains("unpublishable") && parked[1].1.contains("control character"),
        "{parked:?}"
    );
    // Every refused event changed nothing: tenant other has only the two raw rows (and the
    // notices of their parking, which are its own).
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE tenant = 'other' AND type <> 'quorum.dlq.parked'",
    )
    .fetch_one(&s.env.db.pool)
    .await?;
    assert_eq!(stored, 3, "the two raw rows and shared-1");
    s.shutdown.cancel();
    Ok(())
}
