//! An OTLP/HTTP receiver, as a collector would be: it takes what the services export to
//! `/v1/traces`, decodes it with the OpenTelemetry protocol's generated types, and keeps each span
//! with the `service.name` of the process that sent it. The checks below find one trace in it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail, ensure};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;

/// One span as received.
#[derive(Clone, Debug)]
pub struct Span {
    pub service: String,
    pub name: String,
    pub kind: SpanKind,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent: String,
    pub attributes: BTreeMap<String, String>,
}

pub struct Receiver {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` should say.
    pub endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new()
            .route("/v1/traces", post(export))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { endpoint, spans })
    }

    /// The spans of `trace_id` (32 hex digits) received so far.
    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        let spans = self.spans.lock().expect("not poisoned");
        spans
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

async fn export(
    State(spans): State<Arc<Mutex<Vec<Span>>>>,
    body: Bytes,
) -> Result<Vec<u8>, (axum::http::StatusCode, String)> {
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|e| (axum::http::StatusCode::BAD_REQUEST, e.to_string()))?;
    let mut received = spans.lock().expect("not poisoned");
    for resource in request.resource_spans {
        let service = resource
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .and_then(|a| a.get("service.name").cloned())
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                received.push(Span {
                    service: service.clone(),
                    kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                    name: span.name,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent: hex::encode(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    Ok(ExportTraceServiceResponse::default().encode_to_vec())
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(AnyValue::StringValue(s)) => s.clone(),
                Some(AnyValue::IntValue(i)) => i.to_string(),
                Some(AnyValue::BoolValue(b)) => b.to_string(),
                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), value)
        })
        .collect()
}

/// Checks that `spans` are one trace from a client's request to the consensus, each with the
/// right parent across processes:
/// client span `client_span` → ingest's `POST /v1/queries` (server) → the relay's `send` of the
/// query (producer) → fan-out's `process` (consumer) → three `chat` calls (client), and a `send`
/// of an expert's answer (producer) under fan-out's process → consensus's `process` (consumer) →
/// `decide`, which decided.
pub fn check_one_trace(spans: &[Span], client_span: &str) -> anyhow::Result<()> {
    let by_id: BTreeMap<&str, &Span> = spans.iter().map(|s| (s.span_id.as_str(), s)).collect();
    let parent_of = |s: &Span| by_id.get(s.parent.as_str()).copied();
    let find = |what: &str, test: &dyn Fn(&Span) -> bool| -> anyhow::Result<Vec<&Span>> {
        let found: Vec<&Span> = spans.iter().filter(|s| test(s)).collect();
        if found.is_empty() {
            bail!("no {what} among {} spans: {}", spans.len(), summary(spans));
        }
        Ok(found)
    };

    let server = find("ingest server span of POST /v1/queries", &|s| {
        s.service == "ingest"
            && s.kind == SpanKind::Server
            && s.name == "POST /v1/queries"
            && s.parent == client_span
    })?[0];
    ensure!(
        server
            .attributes
            .get("http.response.status_code")
            .map(String::as_str)
            == Some("202"),
        "the server span's status: {:?}",
        server.attributes
    );
    let query_send = find("relay send of the query under ingest's span", &|s| {
        s.service == "ingest" && s.kind == SpanKind::Producer && s.parent == server.span_id
    })?[0];
    let fanout = find("fan-out process span under the relay's send", &|s| {
        s.service == "expert-fanout"
            && s.kind == SpanKind::Consumer
            && s.parent == query_send.span_id
    })?[0];
    let chats = find("expert calls under fan-out's process", &|s| {
        s.service == "expert-fanout"
            && s.kind == SpanKind::Client
            && s.name.starts_with("chat ")
            && s.parent == fanout.span_id
    })?;
    ensure!(
        chats.len() == 3,
        "{} expert calls under fan-out, not 3: {}",
        chats.len(),
        summary(spans)
    );
    for chat in &chats {
        ensure!(
            chat.attributes
                .get("gen_ai.operation.name")
                .map(String::as_str)
                == Some("chat"),
            "{chat:?}"
        );
    }
    let consensus = find("consensus process span under a send of fan-out's", &|s| {
        s.service == "consensus"
            && s.kind == SpanKind::Consumer
            && parent_of(s).is_some_and(|send| {
                send.kind == SpanKind::Producer && send.parent == fanout.span_id
            })
    })?;
    find("a decision that decided, under consensus's process", &|s| {
        s.service == "consensus"
            && s.name == "decide"
            && s.attributes.get("quorum.step").map(String::as_str) == Some("decided")
            && consensus.iter().any(|c| c.span_id == s.parent)
    })?;
    Ok(())
}

fn summary(spans: &[Span]) -> String {
    let mut lines: Vec<String> = spans
        .iter()
        .map(|s| {
            format!(
                "\n  {} {} {:?} {} ← {}",
                s.service, s.name, s.kind, s.span_id, s.parent
            )
        })
        .collect();
    lines.sort();
    lines.concat()
}

/// Submits a question with `traceparent` as a client in a trace would, and waits for its answer.
pub async fn ask_in_a_trace(
    client: &reqwest::Client,
    ingest: &str,
    key: &str,
    traceparent: &str,
) -> anyhow::Result<()> {
    let submitted: serde_json::Value = client
        .post(format!("{ingest}/v1/queries"))
        .bearer_auth(key)
        .header("traceparent", traceparent)
        .json(&serde_json::json!({"question": "What is the capital of France?"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = submitted["query_id"].as_str().context("a query id")?;
    let view: serde_json::Value = client
        .get(format!("{ingest}/v1/queries/{id}?wait=60s"))
        .bearer_auth(key)
        .send()
        .await?
        .json()
        .await?;
    ensure!(view["status"] == "reached", "{view}");
    Ok(())
}
