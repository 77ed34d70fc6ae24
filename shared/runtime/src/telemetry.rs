//! Logs and traces of a Quorum process: the global `tracing` subscriber and OTLP span export. The
//! spans themselves and the trace context they carry across processes are `quorum_trace`'s.
//!
//! OpenTelemetry spans are built only for the traces this process records (`quorum_trace`
//! decides, once per request or message): with an exporter, those the sampler in
//! `OTEL_TRACES_SAMPLER` keeps (every one by default) and those a sampled parent asks for; without
//! one, none. A trace not recorded still passes its `traceparent` on as it came, so a downstream
//! service that does export keeps one trace. Exporting needs `OTEL_EXPORTER_OTLP_ENDPOINT` and the
//! `otlp` feature (on by default); it speaks OTLP over HTTP/protobuf, plain `http://` only (no TLS
//! client is compiled in: export to a collector beside the process).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Config, Sampler, SdkTracerProvider};
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The environment variable whose presence turns on span export.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

mod logs;

pub use quorum_config::LogFormat;

/// Telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `RUST_LOG` holds a directive that does not parse.
    #[error("invalid RUST_LOG")]
    Filter(#[source] tracing_subscriber::filter::FromEnvError),
    /// [`init`] ran before in this process (or something else set the global subscriber).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
    /// The OTLP exporter could not be built from the `OTEL_EXPORTER_OTLP_*` variables.
    #[cfg(feature = "otlp")]
    #[error("cannot build the OTLP span exporter")]
    Exporter(#[source] opentelemetry_otlp::ExporterBuildError),
}

/// Keeps span export alive; dropping it flushes the spans not yet exported and shuts the exporter
/// down. Hold it in `main` until the runtime's work is done.
#[must_use = "dropping the guard shuts down span export"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // Blocks until the batch exporter has flushed, bounded by the SDK's shutdown timeout.
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "span exporter did not shut down cleanly");
        }
    }
}

/// Installs the global subscriber of the process: an `EnvFilter` from `RUST_LOG` (default `info`),
/// log lines on stderr in `format`, and OpenTelemetry spans with `service.name` = `service`,
/// exported over OTLP when [`OTLP_ENDPOINT_ENV`] is set. Also installs the W3C trace-context
/// propagator as the global one.
///
/// The exporter reads the standard `OTEL_EXPORTER_OTLP_*` variables itself (endpoint, headers,
/// timeout); spans go to `$OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces`.
pub fn init(service: &'static str, format: LogFormat) -> Result<TelemetryGuard, TelemetryError> {
    // Without RUST_LOG: info, except the NATS client's connection chatter (every connect and
    // reconnect is an info event there; its warnings and errors still show).
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .from_env()
            .map_err(TelemetryError::Filter)?,
        _ => EnvFilter::new("info,async_nats=warn"),
    };
    let provider = tracer_provider(service)?;
    // Leaf spans (store calls, expert calls, sends) are made with the SDK directly, by the same
    // tracer as the layer's.
    quorum_trace::set_tracer(provider.tracer(service));
    // What the defaults add and nothing here reads: code locations, thread and target attributes,
    // busy/idle timings, and an OpenTelemetry context made current at every poll (quorum_trace
    // asks the span itself).
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service))
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_context_activation(false)
        .with_filter(quorum_trace::otel_filter());

    tracing_subscriber::registry()
        .with(logs::layer(format, std::io::stderr))
        .with(otel)
        .with(filter)
        .try_init()
        .map_err(TelemetryError::AlreadyInstalled)?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    Ok(TelemetryGuard { provider })
}

fn tracer_provider(service: &'static str) -> Result<SdkTracerProvider, TelemetryError> {
    // quorum_trace decides which traces are recorded (with the sampler `OTEL_TRACES_SAMPLER`
    // names, where a trace starts); what reaches the SDK is to be recorded.
    let builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service).build())
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
    let export = std::env::var_os(OTLP_ENDPOINT_ENV).is_some_and(|v| !v.is_empty());
    if !export {
        quorum_trace::set_sampling(quorum_trace::Sampling::Off);
        return Ok(builder.build());
    }

    #[cfg(feature = "otlp")]
    {
        use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
        // The exporter builds its own reqwest client, which needs the TLS provider.
        quorum_http_client::install_tls_provider();
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .build()
            .map_err(TelemetryError::Exporter)?;
        quorum_trace::set_sampling(quorum_trace::Sampling::On(Config::default().sampler));
        Ok(builder.with_batch_exporter(exporter).build())
    }
    #[cfg(not(feature = "otlp"))]
    {
        // No subscriber exists yet to log this through.
        eprintln!(
            "{OTLP_ENDPOINT_ENV} is set but quorum-runtime was built without the `otlp` feature; spans are not exported"
        );
        quorum_trace::set_sampling(quorum_trace::Sampling::Off);
        Ok(builder.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses_lowercase_names() {
        for (name, format) in [
            ("auto", LogFormat::Auto),
            ("json", LogFormat::Json),
            ("pretty", LogFormat::Pretty),
        ] {
            let parsed: LogFormat = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(parsed, format);
        }
        assert!(LogFormat::Json.is_json());
        assert!(!LogFormat::Pretty.is_json());
    }

    // The only test in this binary that installs the global subscriber.
    #[cfg(feature = "otlp")]
    #[test]
    #[allow(clippy::result_large_err)] // `Jail`'s closure returns figment's large error type
    fn init_installs_once_and_exports_spans_over_otlp_http() {
        let (endpoint, collector) = one_shot_collector();
        figment::Jail::expect_with(|jail| {
            jail.set_env("RUST_LOG", "info");
            jail.set_env(OTLP_ENDPOINT_ENV, &endpoint);

            let guard = init("quorum-test", LogFormat::Json).expect("first init");
            tracing::info_span!("exported").in_scope(|| tracing::info!("hello"));
            assert!(matches!(
                init("quorum-test", LogFormat::Pretty),
                Err(TelemetryError::AlreadyInstalled(_))
            ));
            // Dropping the guard flushes the batch.
            drop(guard);
            Ok(())
        });
        let request = collector.join().unwrap();
        assert!(request.starts_with("POST /v1/traces HTTP/1.1"), "{request}");
        assert!(
            request
                .to_ascii_lowercase()
                .contains("content-type: application/x-protobuf"),
            "{request}"
        );
    }

    /// A stand-in OTLP collector on a loopback port: answers the first request with an empty
    /// success and returns its head; gives up after a deadline rather than hang the test.
    #[cfg(feature = "otlp")]
    fn one_shot_collector() -> (String, std::thread::JoinHandle<String>) {
        use std::io::{Read as _, Write as _};
        use std::time::{Duration, Instant};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let collector = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => panic!("no export arrived: {e}"),
                }
            };
            stream.set_nonblocking(false).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut head = [0u8; 4096];
            let read = stream.read(&mut head).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            String::from_utf8_lossy(&head[..read]).into_owned()
        });
        (endpoint, collector)
    }
}
