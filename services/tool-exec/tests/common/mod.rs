//! What the tool-exec tests share: real NATS and Postgres with the relay, a test HTTP service that
//! records every call and honours `Idempotency-Key` (a key applies once), and plan submission.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use quorum_domain::{Event, StreamId, TenantId, types};
use quorum_event_store::{EventStore, ExpectedVersion};
use serde_json::{Value, json};

/// One call the service received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub key: String,
}

#[derive(Clone, Default)]
pub struct Recorder {
    pub received: Arc<Mutex<Vec<Received>>>,
    /// Effects applied, by idempotency key: a repeated key is answered, not applied again.
    pub applied: Arc<Mutex<HashMap<String, usize>>>,
}

impl Recorder {
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn applied(&self) -> HashMap<String, usize> {
        self.applied.lock().unwrap().clone()
    }
}

async fn handle(
    State(r): State<Recorder>,
    method: axum::http::Method,
    headers: HeaderMap,
    Path((kind, n)): Path<(String, String)>,
) -> (StatusCode, String) {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    r.received.lock().unwrap().push(Received {
        method: method.to_string(),
        path: format!("/{kind}/{n}"),
        key: key.clone(),
    });
    match kind.as_str() {
        "fail" => return (StatusCode::BAD_REQUEST, "no".into()),
        "flaky" => return (StatusCode::INTERNAL_SERVER_ERROR, "down".into()),
        "slow" => tokio::time::sleep(Duration::from_secs(3)).await,
        _ => {}
    }
    *r.applied.lock().unwrap().entry(key).or_default() += 1;
    (StatusCode::OK, format!("{{\"done\":\"{n}\"}}"))
}

/// The test HTTP service on a free port.
pub async fn service() -> anyhow::Result<(SocketAddr, Recorder)> {
    let recorder = Recorder::default();
    let app = Router::new()
        .route("/{kind}/{n}", post(handle).delete(handle))
        .with_state(recorder.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, recorder))
}

/// An http step to `path` on `addr`, undone by a DELETE to `undo` when given.
pub fn http_step(name: &str, addr: SocketAddr, path: &str, undo: Option<&str>) -> Value {
    let mut step = json!({
        "name": name,
        "tool": { "tool": "http", "args": { "method": "POST", "url": format!("http://{addr}{path}") } },
    });
    if let Some(undo) = undo {
        step["compensate"] = json!({ "tool": "http", "args": { "method": "DELETE", "url": format!("http://{addr}{undo}") } });
    }
    step
}

/// Appends a plan request for `steps` as tenant `acme`; returns the saga id.
pub async fn submit(store: &EventStore, plan: Value) -> anyhow::Result<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let stream = StreamId::new("saga", &id)?;
    let data = json!({ "plan": plan, "origin": { "kind": "upstream" } });
    let event = Event::new(
        "/test",
        types::TOOL_PLAN_REQUESTED,
        stream.clone(),
        TenantId::new("acme")?,
        Bytes::from(data.to_string()),
    );
    store
        .append(&stream, ExpectedVersion::NoStream, &[event])
        .await?;
    Ok(id)
}

/// The saga's event types, in order.
pub async fn saga_types(store: &EventStore, id: &str) -> anyhow::Result<Vec<String>> {
    let stream = StreamId::new("saga", id)?;
    Ok(store
        .read_stream(&stream, 1, 1000)
        .await?
        .into_iter()
        .map(|r| r.event.ty)
        .collect())
}

/// The saga's events as (type, data).
pub async fn saga_events(store: &EventStore, id: &str) -> anyhow::Result<Vec<(String, Value)>> {
    let stream = StreamId::new("saga", id)?;
    Ok(store
        .read_stream(&stream, 1, 1000)
        .await?
        .into_iter()
        .map(|r| {
            let data = r
                .event
                .data
                .as_deref()
                .and_then(|d| serde_json::from_slice(d).ok())
                .unwrap_or_default();
            (r.event.ty, data)
        })
        .collect())
}

pub fn is_terminal(ty: &str) -> bool {
    matches!(
        ty,
        "quorum.tool.plan.completed" | "quorum.tool.plan.compensated" | "quorum.tool.plan.failed"
    )
}

/// Real servers and the relay; the caller starts tool-exec in-process or as a process.
pub struct Env {
    pub nats: quorum_devstack::NatsServer,
    pub db: quorum_testkit::TestDb,
    pub js: async_nats::jetstream::Context,
    pub store: EventStore,
    pub shutdown: quorum_runtime::Shutdown,
}

pub async fn env() -> anyhow::Result<Env> {
    quorum_testkit::init_tracing();
    let nats = quorum_testkit::nats().await?;
    let db = quorum_testkit::postgres().await.fresh_db().await?;
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await?);
    quorum_bus::ensure_streams(&js).await?;
    let shutdown = quorum_runtime::Shutdown::new();
    shutdown.spawn(quorum_relay::run(
        db.pool.clone(),
        js.clone(),
        Default::default(),
        shutdown.token(),
    ));
    Ok(Env {
        store: EventStore::new(db.pool.clone()),
        nats,
        db,
        js,
        shutdown,
    })
}

/// A config for tests: http to 127.0.0.1 on `port`, exec of a few programs, both allowed for acme.
pub fn config(env: &Env, port: u16) -> quorum_tool_exec::config::ToolExecConfig {
    let mut c = quorum_tool_exec::config::ToolExecConfig::default();
    c.common.nats_url = env.nats.url();
    c.common.database_url = env.db.url.clone();
    c.http.allowed_hosts = vec![format!("127.0.0.1:{port}")];
    c.exec.allowed_programs = ["/bin/echo", "/bin/sh", "/bin/true"]
        .map(Into::into)
        .to_vec();
    c.workdir_root = std::env::temp_dir().join(format!("quorum-sagas-{}", uuid::Uuid::now_v7()));
    c.default_policy.allowed_tools = vec!["http".into(), "exec".into()];
    c.ack_wait = Duration::from_secs(3);
    c
}
