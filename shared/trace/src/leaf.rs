//! Spans with no span under them (a store call, an expert call, a send), made straight with the
//! OpenTelemetry SDK rather than as `tracing` spans.
//!
//! They are most of a query's spans, and as `tracing` spans each one went through the registry
//! and every layer at its start, at every poll (enter and exit) and at its end, and had each
//! attribute copied into a new string. A leaf needs none of that: nothing is logged inside it and
//! nothing is made under it, so it takes its parent's context once, keeps its static attributes
//! as they are, and ends when dropped.

use std::borrow::Cow;
use std::sync::OnceLock;

use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{TraceContext, UNRECORDED, remote_parent, unrecorded};

static TRACER: OnceLock<SdkTracer> = OnceLock::new();

/// Sets the tracer leaves are made with: the one the process's OpenTelemetry layer uses, so that
/// both export alike. The first call wins; until then no leaf is made.
pub fn set_tracer(tracer: SdkTracer) {
    let _ = TRACER.set(tracer);
}

/// One leaf span, ended when dropped; [`Leaf::none`] in a trace not recorded.
#[derive(Debug)]
#[must_use = "a leaf span ends when dropped"]
pub struct Leaf(Option<opentelemetry_sdk::trace::Span>);

impl Leaf {
    /// No span: what is recorded on it goes nowhere.
    pub fn none() -> Self {
        Leaf(None)
    }

    /// A child of the current span, if that span is recorded.
    pub fn child(
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Self {
        let current = tracing::Span::current();
        if current.metadata().is_none_or(|m| m.target() == UNRECORDED) {
            return Leaf::none();
        }
        let parent = current.context();
        if !parent.span().span_context().is_valid() {
            return Leaf::none();
        }
        Leaf::start(&parent, name, kind, attributes)
    }

    /// A child of the remote span `traceparent` names (a message's sender), if its trace is
    /// recorded here; a malformed one starts a trace.
    pub fn child_of_remote(
        traceparent: &str,
        tracestate: Option<&str>,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Self {
        if unrecorded(Some(traceparent), tracestate).is_some() {
            return Leaf::none();
        }
        let parent = match remote_parent(traceparent, tracestate) {
            Some(parent) => Context::new().with_remote_span_context(parent),
            None => Context::new(),
        };
        Leaf::start(&parent, name, kind, attributes)
    }

    fn start(
        parent: &Context,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Self {
        let Some(tracer) = TRACER.get() else {
            return Leaf::none();
        };
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        Leaf(Some(span))
    }

    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// Sets an attribute (one known only when the work is done: tokens, attempts).
    pub fn set(&mut self, attribute: KeyValue) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(attribute);
        }
    }

    /// Marks the span failed (`otel.status_code` = `error`, as a `tracing` span records it).
    pub fn error(&mut self) {
        if let Some(span) = &mut self.0 {
            span.set_status(Status::error(""));
        }
    }

    /// The span's own context, for what it sends on; `None` for no span.
    pub fn context(&self) -> Option<TraceContext> {
        let span = self.0.as_ref()?;
        Some(TraceContext::of(span.span_context()))
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt as _;

    use super::*;
    use crate::tests::{PARENT, received};
    use crate::{consumer_span, producer_span, test_subscriber};

    #[test]
    fn a_leaf_is_a_child_of_the_current_span() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let span = consumer_span(received(PARENT, None));
            let parent = span.context().span().span_context().clone();
            let leaf = span.in_scope(|| {
                Leaf::child(
                    "SELECT events",
                    SpanKind::Client,
                    vec![KeyValue::new("db.system.name", "postgresql")],
                )
            });
            let data = leaf
                .0
                .as_ref()
                .and_then(|s| s.exported_data())
                .expect("a span");
            assert_eq!(data.parent_span_id, parent.span_id());
            assert_eq!(data.span_context.trace_id(), parent.trace_id());
            assert_eq!(data.name, "SELECT events");
            assert_eq!(data.span_kind, SpanKind::Client);
            assert_eq!(
                data.attributes,
                vec![KeyValue::new("db.system.name", "postgresql")]
            );
        });
    }

    #[test]
    fn no_leaf_outside_a_span_or_in_a_trace_not_recorded() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let leaf = || Leaf::child("SELECT events", SpanKind::Client, Vec::new());
            assert!(leaf().is_none(), "no current span");
            let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
            let root = consumer_span(received(unsampled, None));
            assert!(root.in_scope(leaf).is_none(), "a trace not recorded");
            assert!(producer_span("s", "e1", unsampled, None).is_none());
        });
    }

    /// A send is a child of the span that appended the event, named by the event's traceparent,
    /// and what the message carries names the send.
    #[test]
    fn a_send_continues_the_events_trace_and_names_itself() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let mut send = producer_span("quorum.evt.t.query", "e1", PARENT, Some("congo=t61"));
            send.error();
            let data = send
                .0
                .as_ref()
                .and_then(|s| s.exported_data())
                .expect("a span");
            assert_eq!(data.parent_span_id.to_string(), "00f067aa0ba902b7");
            assert_eq!(data.name, "publish quorum.evt.{tenant}.{type}");
            assert!(
                data.attributes.contains(&KeyValue::new(
                    "messaging.destination.name",
                    "quorum.evt.t.query"
                )),
                "{:?}",
                data.attributes
            );
            assert_eq!(data.span_kind, SpanKind::Producer);
            assert_eq!(data.status, Status::error(""));
            let cx = send.context().expect("a context");
            assert_eq!(
                cx.traceparent,
                format!(
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
                    data.span_context.span_id()
                )
            );
            assert_eq!(cx.tracestate.as_deref(), Some("congo=t61"));
        });
    }
}
