//! One trace across Quorum's processes.
//!
//! A request or a message arrives with a W3C `traceparent` (an HTTP header, a NATS header, or the
//! CloudEvents distributed-tracing extension an event keeps in Postgres). The span that handles it
//! continues that trace ([`continue_from`]), and what it sends on carries the span's own context
//! ([`current`]). The spans are built here, one constructor per kind, so that every service names
//! them and their attributes as the OpenTelemetry semantic conventions do (HTTP server, messaging
//! producer and consumer); `tracing-opentelemetry` turns them into OpenTelemetry spans
//! (`otel.name`, `otel.kind` and `otel.status_code` are its special fields).
//!
//! **Leaves skip `tracing`.** A span with no span under it (a send, a store call, an expert call)
//! is a [`Leaf`], made with the OpenTelemetry SDK directly: `tracing` would take it through the
//! registry and every layer at each poll and copy each attribute, for a span nothing logs in.
//!
//! Every root span of a unit of work carries `trace_id` (and, where known, `tenant` and
//! `correlation_id`), so each log line written inside it can be found from the trace and back.
//!
//! **Only recorded traces cost spans.** Whether a trace is recorded is decided once, where a unit
//! of work starts: a received `traceparent`'s sampled flag, or, for a trace that starts here, the
//! process's [`Sampling`]. The root span of a trace not recorded is log-only: it has the target
//! [`UNRECORDED`], which [`otel_filter`] keeps from the OpenTelemetry layer, carries `trace_id`,
//! `tenant` and `correlation_id` for the logs, and passes the trace context on as it came ([`of`]);
//! no other span is made inside it ([`recording`]). Building an OpenTelemetry span costs tens of
//! microseconds whether or not the SDK's sampler later drops it, so deciding first is what makes a
//! sampled or an unexported trace cheap.

use opentelemetry::trace::TraceContextExt as _;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

mod leaf;
mod sampling;
mod w3c;

pub use leaf::{Leaf, set_tracer};
/// What a [`Leaf`] is made of, so its callers need no OpenTelemetry crate of their own.
pub use opentelemetry::KeyValue;
pub use opentelemetry::trace::SpanKind;
pub(crate) use sampling::unrecorded;
pub use sampling::{Sampling, UNRECORDED, otel_filter, recording, set_sampling};
use sampling::{passed_on, passing_on, trace_id_of};
pub use w3c::TraceContext;
pub(crate) use w3c::{is_traceparent, remote_parent, trace_id_in, well_formed_state};

/// The trace context of the current span, to send along with a message; `None` when there is no
/// valid one (no span, or no OpenTelemetry layer installed).
pub fn current() -> Option<TraceContext> {
    of(&tracing::Span::current())
}

/// The trace context of `span`; see [`current`].
pub fn of(span: &tracing::Span) -> Option<TraceContext> {
    if span.metadata().is_some_and(|m| m.target() == UNRECORDED) {
        return passed_on(span);
    }
    let cx = span.context();
    let otel_span = cx.span();
    let sc = otel_span.span_context();
    sc.is_valid().then(|| TraceContext::of(sc))
}

/// Makes `span` a child of the remote span named by `traceparent` (and `tracestate`), as received
/// with a message. Call it before the span is first entered.
///
/// Returns whether the parent was set: `false` for a malformed `traceparent`, a span already
/// started, or no OpenTelemetry layer. A bad header from upstream is not an error worth failing a
/// message for; the span then starts a trace of its own.
///
/// Only a well-formed context is taken, as W3C Trace Context asks: a version-00 `traceparent` in
/// lowercase hex with ids not all zero, and a `tracestate` of at most 512 printable characters
/// (another is dropped, the parent kept). What a span carries on ends up in stored events, so a
/// caller's header can never put there what an event attribute may not hold.
pub fn set_parent_from(traceparent: &str, tracestate: Option<&str>, span: &tracing::Span) -> bool {
    let Some(parent) = remote_parent(traceparent, tracestate) else {
        tracing::debug!(traceparent, "ignoring a malformed traceparent");
        return false;
    };
    span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent))
        .is_ok()
}

/// Continues the trace of `traceparent` in `span` when there is a valid one (see
/// [`set_parent_from`]); otherwise records the `trace_id` of the trace the span starts, so log
/// lines show the trace either way (a continued trace's id is given when the span is made, see
/// the span constructors). Call it before the span is first entered.
pub fn continue_from(traceparent: Option<&str>, tracestate: Option<&str>, span: &tracing::Span) {
    if traceparent.is_some_and(|p| set_parent_from(p, tracestate, span)) {
        return;
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// The span of one HTTP request a server handles (`http.server` conventions). `route` is the
/// matched pattern, never the raw path, so span names stay bounded. Record
/// `http.response.status_code` (and `otel.status_code` = `error` for a 5xx) when answered, and
/// `tenant` once the caller is known. It continues the trace of the request's `traceparent` and
/// `tracestate` headers, if well-formed.
pub fn http_server_span(
    api: &'static str,
    method: &str,
    route: &str,
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> tracing::Span {
    if let Some(cx) = unrecorded(traceparent, tracestate) {
        let span = tracing::info_span!(
            target: UNRECORDED,
            "request",
            trace_id = tracing::field::display(trace_id_of(&cx)),
            tenant = Empty,
        );
        return passing_on(span, cx);
    }
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = Empty,
        quorum.api = api,
        trace_id = trace_id_in(traceparent).map(tracing::field::display),
        tenant = Empty,
    );
    continue_from(traceparent, tracestate, &span);
    span
}

/// What a consumer span is about: one delivered event.
#[derive(Clone, Copy, Debug)]
pub struct Received<'a> {
    /// The durable consumer (the `messaging.consumer.group.name`).
    pub consumer: &'a str,
    /// The subject it was delivered on.
    pub subject: &'a str,
    /// The event's id.
    pub message_id: &'a str,
    /// The event's type.
    pub event_type: &'a str,
    pub tenant: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
    /// The event's trace context, which the span continues.
    pub traceparent: Option<&'a str>,
    pub tracestate: Option<&'a str>,
}

/// The span of one message a consumer processes (messaging `process` conventions), a child of the
/// span that published it. Record `otel.status_code` = `error` when the handler did not succeed.
pub fn consumer_span(received: Received<'_>) -> tracing::Span {
    if let Some(cx) = unrecorded(received.traceparent, received.tracestate) {
        let span = tracing::info_span!(
            target: UNRECORDED,
            "message",
            trace_id = tracing::field::display(trace_id_of(&cx)),
            tenant = received.tenant,
            correlation_id = received.correlation_id,
        );
        return passing_on(span, cx);
    }
    let span = tracing::info_span!(
        "message",
        otel.name = %format_args!("process {}", received.consumer),
        otel.kind = "consumer",
        otel.status_code = Empty,
        messaging.system = "nats",
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = received.subject,
        messaging.consumer.group.name = received.consumer,
        messaging.message.id = received.message_id,
        cloudevents.event_type = received.event_type,
        trace_id = trace_id_in(received.traceparent).map(tracing::field::display),
        tenant = received.tenant,
        correlation_id = received.correlation_id,
    );
    continue_from(received.traceparent, received.tracestate, &span);
    span
}

/// The span of one event the relay sends to the bus (messaging `send` conventions), a child of the
/// span that appended the event; the message carries this span's context, so each consumer's
/// process span is its child. [`Leaf::none`] when the event's trace is not recorded: the message
/// then carries the event's own context.
///
/// Its name is the operation and the subject's template, as the conventions ask of a destination
/// whose name holds ids (here the tenant): span names stay few, and nothing is formatted per send.
pub fn producer_span(
    subject: &str,
    message_id: &str,
    traceparent: &str,
    tracestate: Option<&str>,
) -> Leaf {
    Leaf::child_of_remote(
        traceparent,
        tracestate,
        "publish quorum.evt.{tenant}.{type}",
        SpanKind::Producer,
        vec![
            KeyValue::new("messaging.system", "nats"),
            KeyValue::new("messaging.operation.type", "send"),
            KeyValue::new("messaging.operation.name", "publish"),
            KeyValue::new(
                "messaging.destination.template",
                "quorum.evt.{tenant}.{type}",
            ),
            KeyValue::new("messaging.destination.name", subject.to_owned()),
            KeyValue::new("messaging.message.id", message_id.to_owned()),
        ],
    )
}

/// Marks `span` as failed (`otel.status_code` = `error`); it must declare that field.
pub fn record_error(span: &tracing::Span) {
    span.record("otel.status_code", "error");
}

/// A subscriber with the OpenTelemetry layer but no exporter or log output, for tests of code that
/// propagates trace context (use with `tracing::subscriber::with_default`). The provider must
/// outlive the subscriber's use.
#[doc(hidden)]
pub fn test_subscriber() -> (
    impl tracing::Subscriber + Send + Sync,
    opentelemetry_sdk::trace::SdkTracerProvider,
) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    set_tracer(provider.tracer("test"));
    let subscriber = tracing_subscriber::registry()
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(provider.tracer("test"))
                .with_filter(otel_filter()),
        )
        // Enables every span, as a process's log layer enables the roots: a span no layer
        // enables does not exist, and a log-only root would pass nothing on.
        .with(tracing_subscriber::layer::Identity::new());
    (subscriber, provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// An expert's answer delivered to consensus, in the trace `traceparent` names.
    pub(crate) fn received<'a>(traceparent: &'a str, tracestate: Option<&'a str>) -> Received<'a> {
        Received {
            consumer: "consensus",
            subject: "quorum.evt.t.expert",
            message_id: "e1",
            event_type: "quorum.expert.answered",
            tenant: Some("t"),
            correlation_id: Some("q1"),
            traceparent: Some(traceparent),
            tracestate,
        }
    }

    #[test]
    fn a_span_continues_the_trace_it_was_given() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("handle");
            assert!(set_parent_from(PARENT, Some("congo=t61rcWkgMzE"), &span));

            let cx = span.in_scope(current).expect("a trace context");
            let parts: Vec<_> = cx.traceparent.split('-').collect();
            assert_eq!(parts[0], "00");
            assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
            assert_ne!(parts[2], "00f067aa0ba902b7", "a span of its own");
            assert_eq!(parts[3], "01", "sampled, as the parent was");
            assert_eq!(cx.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        });
    }

    #[test]
    fn a_root_span_starts_a_new_trace() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("ingest");
            let cx = of(&span).expect("a trace context");
            assert_eq!(cx.traceparent.len(), 55, "{}", cx.traceparent);
            assert_eq!(cx.tracestate, None);
        });
    }

    #[test]
    fn a_malformed_traceparent_is_ignored() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("handle");
            assert!(!set_parent_from("not-a-traceparent", None, &span));
            assert!(!set_parent_from(
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                None,
                &span
            ));
        });
    }

    #[test]
    fn only_a_well_formed_trace_context_is_taken() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let taken = |parent: &str, state: &str| {
                let span = tracing::info_span!("handle");
                set_parent_from(parent, Some(state), &span).then(|| of(&span).expect("a context"))
            };
            let good = taken(PARENT, "congo=t61rcWkgMzE").expect("taken");
            assert_eq!(good.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
            for bad in [
                "00\tx",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ] {
                assert!(taken(bad, "a=b").is_none(), "{bad:?}");
            }
            for state in ["x".repeat(600), "a=b\tc".to_owned()] {
                let cx = taken(PARENT, &state).expect("the parent is taken");
                assert_eq!(cx.tracestate, None, "{state:?}");
            }
        });
    }

    #[test]
    fn a_consumer_span_continues_the_message_trace() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let span = consumer_span(received(PARENT, None));
            let cx = of(&span).expect("a trace context");
            assert!(cx.traceparent.contains("4bf92f3577b34da6a3ce929d0e0e4736"));
            assert!(
                span.in_scope(recording),
                "a sampled parent's trace is recorded"
            );
        });
    }

    /// A parent not sampled: the span is log-only (no OpenTelemetry span is built), passes the
    /// context on exactly as it came, and nothing is made inside it.
    #[test]
    fn a_trace_not_sampled_is_passed_on_without_spans() {
        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
            let span = consumer_span(received(parent, Some("congo=t61rcWkgMzE")));
            assert_eq!(span.metadata().map(|m| m.target()), Some(UNRECORDED));
            let passed = of(&span).expect("the received context");
            assert_eq!(passed.traceparent, parent);
            assert_eq!(passed.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
            assert!(
                !span.context().span().span_context().is_valid(),
                "no OpenTelemetry span"
            );
            span.in_scope(|| {
                assert!(!recording());
                assert_eq!(current().map(|c| c.traceparent).as_deref(), Some(parent));
            });
            // And the producer span of such an event is none: the message carries its context.
            assert!(producer_span("s", "e1", parent, None).is_none());
            assert!(!producer_span("s", "e1", PARENT, None).is_none());
        });
    }

    #[test]
    fn no_trace_context_without_the_layer() {
        let subscriber = tracing_subscriber::registry();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("handle");
            assert!(span.in_scope(current).is_none());
        });
    }
}
