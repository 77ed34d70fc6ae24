//! The stand-in for an OpenTelemetry Collector that `bench pipeline --tracing` exports to: takes
//! OTLP/HTTP exports, decodes them with the protocol's own types and counts the spans by name.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

/// Spans received, by name.
type Names = Arc<Mutex<BTreeMap<String, u64>>>;

pub(super) struct Collector {
    /// `http://<address>`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub endpoint: String,
    names: Names,
    requests: Arc<AtomicU64>,
}

impl Collector {
    pub async fn start() -> anyhow::Result<Self> {
        let names = Names::default();
        let requests = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state((names.clone(), requests.clone()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self {
            endpoint,
            names,
            requests,
        })
    }

    /// Spans received so far, by name.
    pub fn by_name(&self) -> BTreeMap<String, u64> {
        self.names.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// Spans received so far.
    pub fn spans(&self) -> u64 {
        self.by_name().values().sum()
    }

    /// Export requests received so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

async fn export(
    State((names, requests)): State<(Names, Arc<AtomicU64>)>,
    body: Bytes,
) -> Result<Vec<u8>, axum::http::StatusCode> {
    let request =
        ExportTraceServiceRequest::decode(body).map_err(|_| axum::http::StatusCode::BAD_REQUEST)?;
    let spans = request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans);
    if let Ok(mut names) = names.lock() {
        for span in spans {
            match names.get_mut(&span.name) {
                Some(n) => *n += 1,
                None => {
                    names.insert(span.name.clone(), 1);
                }
            }
        }
    }
    requests.fetch_add(1, Ordering::Relaxed);
    Ok(ExportTraceServiceResponse::default().encode_to_vec())
}
