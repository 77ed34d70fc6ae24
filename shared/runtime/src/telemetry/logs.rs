//! Log lines: JSON for machines, plain text for people. Both carry the fields of the spans a line
//! was written in, so a line inside a request or a message shows its `trace_id`, `tenant` and
//! `correlation_id`. Plain text leaves out the semantic-convention attributes (`http.route`,
//! `messaging.system`, …: every name with a dot), which are there for the trace and would bury
//! the line; JSON keeps everything.
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
