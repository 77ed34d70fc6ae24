//! Log lines: JSON for machines, plain text for people. Both carry the fields of the spans a line
//! was written in, so a line inside a request or a message shows its `trace_id`, `tenant` and
//! `correlation_id`. Both leave out the semantic-convention attributes (`http.route`,
//! `messaging.system`, …: every name with a dot), which are there for the trace, where the
//! `trace_id` leads: they would bury the line, and formatting them at every span's start and
//! every field recorded cost more than building the span (`quorum bench pipeline --tracing`).
//!
//! Only the root spans of a unit of work, `request` and `message`, are logged: they carry the
//! fields a line needs. The spans inside them (expert calls, store calls, sends) are for the
//! trace; formatting their fields for the logs at every span's start was a third of what tracing
//! cost per query (`quorum bench pipeline --tracing`).

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, fmt as sfmt};

/// The spans log lines show: the root of each unit of work (`quorum_trace`'s request and message
/// spans).
const LOGGED_SPANS: [&str; 2] = ["request", "message"];

use super::LogFormat;

/// The log layer of a process, writing to `writer`.
pub(super) fn layer<S, W>(format: LogFormat, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let logged = filter_fn(|meta| !meta.is_span() || LOGGED_SPANS.contains(&meta.name()));
    if format.is_json() {
        sfmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .fmt_fields(JsonFields)
            .with_writer(writer)
            .with_filter(logged)
            .boxed()
    } else {
        sfmt::layer()
            .fmt_fields(PlainFields)
            .with_writer(writer)
            .with_filter(logged)
            .boxed()
    }
}

/// `name=value` pairs separated by spaces, the message bare, and no field whose name has a dot.
struct PlainFields;

impl<'w> FormatFields<'w> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = PlainVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if self.result.is_err() || name.contains('.') {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value:?}")
        } else {
            write!(self.writer, "{separator}{name}={value:?}")
        };
    }
}

/// A JSON object of the fields without a dot in their name, as the JSON format's span list
/// reads them back (`tracing_subscriber`'s own `JsonFields` keeps every field and, for each one
/// recorded later, parses and writes the whole object again).
struct JsonFields;

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = JsonVisitor::default();
        fields.record(&mut visitor);
        write!(writer, "{}", serde_json::Value::Object(visitor.0))
    }

    fn add_fields(
        &self,
        current: &'w mut sfmt::FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut visitor = JsonVisitor::default();
        fields.record(&mut visitor);
        // The common case: only trace attributes (a status code) were recorded.
        if visitor.0.is_empty() {
            return Ok(());
        }
        let mut all = match serde_json::from_str::<serde_json::Value>(current) {
            Ok(serde_json::Value::Object(all)) => all,
            _ => serde_json::Map::new(),
        };
        all.extend(visitor.0);
        current.fields = serde_json::Value::Object(all).to_string();
        Ok(())
    }
}

#[derive(Default)]
struct JsonVisitor(serde_json::Map<String, serde_json::Value>);

impl JsonVisitor {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if !field.name().contains('.') {
            self.0.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for JsonVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if !field.name().contains('.') {
            self.put(field, format!("{value:?}").into());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Self::Writer {
            self.clone()
        }
    }

    /// One log line written inside a consumer span and a child span, as `format` writes it.
    fn line_in_a_message(format: LogFormat) -> String {
        let buffer = Buffer::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(layer(format, buffer.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = quorum_trace::consumer_span(quorum_trace::Received {
                consumer: "consensus",
                subject: "quorum.evt.acme.query",
                message_id: "e1",
                event_type: "quorum.expert.answered",
                tenant: Some("acme"),
                correlation_id: Some("q-42"),
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
                tracestate: None,
            });
            let _entered = span.enter();
            tracing::info_span!("decide").in_scope(|| tracing::warn!(votes = 2, "no quorum yet"));
        });
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_json_line_carries_the_trace_tenant_and_correlation() {
        let line = line_in_a_message(LogFormat::Json);
        let json: serde_json::Value = serde_json::from_str(line.trim()).expect(&line);
        assert_eq!(json["message"], "no quorum yet", "{json}");
        assert_eq!(json["votes"], 2, "{json}");
        let outer = &json["spans"][0];
        assert_eq!(
            outer["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{json}"
        );
        assert_eq!(outer["tenant"], "acme", "{json}");
        assert_eq!(outer["correlation_id"], "q-42", "{json}");
        // The span inside the message is the trace's, not the logs'.
        assert_eq!(json["spans"].as_array().map(Vec::len), Some(1), "{json}");
        // And so are the trace attributes.
        assert_eq!(
            outer.as_object().map(|o| o.keys().any(|k| k.contains('.'))),
            Some(false),
            "{json}"
        );
    }

    /// A request's span learns its tenant after it started, and its trace id when it starts a
    /// trace: both reach the JSON line, and the status recorded on answering does not.
    #[test]
    fn fields_recorded_later_reach_a_json_line() {
        let buffer = Buffer::default();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(layer(LogFormat::Json, buffer.clone()))
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        tracing::subscriber::with_default(subscriber, || {
            let span = quorum_trace::http_server_span("ingest", "POST", "/v1/queries", None, None);
            span.record("tenant", "acme");
            span.record("http.response.status_code", 202);
            span.in_scope(|| tracing::info!("accepted"));
        });
        let bytes = buffer.0.lock().unwrap().clone();
        let line = String::from_utf8(bytes).unwrap();
        let json: serde_json::Value = serde_json::from_str(line.trim()).expect(&line);
        let span = json["spans"][0].as_object().expect(&line);
        assert_eq!(span["tenant"], "acme", "{line}");
        assert_eq!(span["trace_id"].as_str().map(str::len), Some(32), "{line}");
        assert!(!span.keys().any(|k| k.contains('.')), "{line}");
    }

    #[test]
    fn a_plain_line_carries_them_without_the_trace_attributes() {
        let line = line_in_a_message(LogFormat::Pretty);
        for wanted in [
            "trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
            "tenant=\"acme\"",
            "correlation_id=\"q-42\"",
            "no quorum yet votes=2",
        ] {
            assert!(line.contains(wanted), "{wanted} missing from {line}");
        }
        assert!(!line.contains("messaging.system"), "{line}");
        assert!(!line.contains("otel."), "{line}");
    }
}
