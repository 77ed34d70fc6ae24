//! An ingest started in the test process against a fresh nats-server and database, keys to call it
//! with, and a small HTTP client.
#![allow(dead_code)] // each test file uses its own part

use std::net::SocketAddr;

use quorum_auth::Role;
use quorum_domain::TenantId;
use quorum_ingest::IngestConfig;
use quorum_runtime::{Readiness, Shutdown};

pub struct Ingest {
    pub nats: quorum_devstack::NatsServer,
    pub db: quorum_testkit::TestDb,
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    pub http: reqwest::Client,
}

/// Ingest with the default config, tuned by `tune`.
pub async fn ingest(tune: impl FnOnce(&mut IngestConfig)) -> anyhow::Result<Ingest> {
    quorum_testkit::init_tracing();
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let mut config = IngestConfig::default();
    config.common.nats_url = nats.url();
    config.common.database_url = db.url.clone();
    config.http_addr = "127.0.0.1:0".parse()?;
    config.run_relay = false;
    tune(&mut config);
    let shutdown = Shutdown::new();
    let running = quorum_ingest::start(&config, &shutdown, &Readiness::new()).await?;
    Ok(Ingest {
        nats,
        db,
        addr: running.http_addr,
        shutdown,
        http: quorum_http_client::client(),
    })
}

impl Ingest {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A new key of `tenant` with `roles`.
    pub async fn key(&self, tenant: &str, roles: &[Role]) -> anyhow::Result<String> {
        let created =
            quorum_auth::create(&self.db.pool, &TenantId::new(tenant)?, roles, None).await?;
        Ok(created.key)
    }

    /// Events stored, not counting the `quorum.dlq.parked` record of a refused NATS message nor
    /// the bookkeeping of tenant `_system` (keys made, authentications refused).
    pub async fn events_stored(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE type <> 'quorum.dlq.parked' AND tenant <> '_system'",
        )
        .fetch_one(&self.db.pool)
        .await?)
    }

    /// POSTs `body` to /v1/events as `content_type`, with extra headers.
    pub async fn post(
        &self,
        key: Option<&str>,
        content_type: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> anyhow::Result<Answer> {
        let mut req = self
            .http
            .post(self.url("/v1/events"))
            .header("content-type", content_type)
            .body(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Answer::of(req.send().await?).await
    }

    pub async fn get(&self, key: &str, path: &str) -> anyhow::Result<Answer> {
        self.get_from(self.addr, key, path).await
    }

    /// [`Ingest::get`] from the ingest at `addr` (a [`Ingest::replica`]).
    pub async fn get_from(
        &self,
        addr: SocketAddr,
        key: &str,
        path: &str,
    ) -> anyhow::Result<Answer> {
        let url = format!("http://{addr}{path}");
        Answer::of(self.http.get(url).bearer_auth(key).send().await?).await
    }

    /// Another ingest on the same database and NATS, tuned by `tune`, stopped with this one: a
    /// replica, which saw none of this one's requests. Returns its address.
    pub async fn replica(
        &self,
        tune: impl FnOnce(&mut IngestConfig),
    ) -> anyhow::Result<SocketAddr> {
        let mut config = IngestConfig::default();
        config.common.nats_url = self.nats.url();
        config.common.database_url = self.db.url.clone();
        config.http_addr = "127.0.0.1:0".parse()?;
        config.run_relay = false;
        tune(&mut config);
        let running = quorum_ingest::start(&config, &self.shutdown, &Readiness::new()).await?;
        Ok(running.http_addr)
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: serde_json::Value,
}

impl Answer {
    async fn of(r: reqwest::Response) -> anyhow::Result<Self> {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let bytes = r.bytes().await?;
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok(Self {
            status,
            headers,
            json,
        })
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A minimal structured event.
pub fn structured(id: &str, ty: &str) -> String {
    serde_json::json!({
        "specversion": "1.0", "id": id, "source": "https://upstream.example/orders", "type": ty,
        "datacontenttype": "application/json", "data": {"n": 1}
    })
    .to_string()
}
