//! Which traces this process records, decided once where a unit of work starts (see the crate's
//! documentation), and what the log-only root of a trace not recorded passes on.

use std::sync::OnceLock;

use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::{
    IdGenerator as _, RandomIdGenerator, SamplingDecision, ShouldSample,
};
use tracing_subscriber::registry::{LookupSpan as _, SpanData as _};

use crate::{TraceContext, is_traceparent, well_formed_state};

/// The target of a root span whose trace this process does not record.
pub const UNRECORDED: &str = "quorum_trace::unrecorded";

/// Which traces this process records, set once at start ([`set_sampling`]); until then every one
/// is (as in tests).
pub enum Sampling {
    /// None (nothing exports them): every trace is passed on as it came, and one that starts here
    /// is passed on as not sampled.
    Off,
    /// A trace continued from a sampled parent, and one started here if `root` samples it (the
    /// parent-based samplers' rule, which OpenTelemetry's default follows).
    On(Box<dyn ShouldSample>),
}

static SAMPLING: OnceLock<Sampling> = OnceLock::new();

/// Sets which traces this process records; the first call wins.
pub fn set_sampling(sampling: Sampling) {
    let _ = SAMPLING.set(sampling);
}

/// The filter of the OpenTelemetry layer: every span but the log-only roots of traces not
/// recorded. (A filter on targets is decided once per call site, so it costs nothing per span.)
pub fn otel_filter() -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new()
        .with_default(tracing::level_filters::LevelFilter::TRACE)
        .with_target(UNRECORDED, tracing::level_filters::LevelFilter::OFF)
}

/// Whether the work at hand is recorded: `false` inside the root span of a trace not recorded,
/// where a span made would start a trace of its own. Span constructors return `Span::none()`
/// then.
pub fn recording() -> bool {
    tracing::Span::current()
        .metadata()
        .is_none_or(|m| m.target() != UNRECORDED)
}

/// The context a unit of work passes on when its trace is not recorded: the received one (if
/// well-formed), or a new unsampled one; `None` when the trace is recorded.
pub(crate) fn unrecorded(
    traceparent: Option<&str>,
    tracestate: Option<&str>,
) -> Option<TraceContext> {
    let received = traceparent.filter(|p| is_traceparent(p));
    // What is passed on is made only for a trace not recorded: a recorded one is the common
    // case, where every span is made.
    let as_received = |p: &str| TraceContext {
        traceparent: p.to_owned(),
        tracestate: tracestate.and_then(well_formed_state).map(str::to_owned),
    };
    match (SAMPLING.get(), received) {
        (Some(Sampling::Off), Some(p)) => Some(as_received(p)),
        (Some(Sampling::Off), None) => Some(new_context()),
        // The sampled flag is the low bit of the flags' last hex digit.
        (_, Some(p)) => {
            (!p.ends_with(['1', '3', '5', '7', '9', 'b', 'd', 'f'])).then(|| as_received(p))
        }
        (Some(Sampling::On(root)), None) => {
            let trace_id = RandomIdGenerator::default().new_trace_id();
            let decision = root
                .should_sample(None, trace_id, "", &SpanKind::Server, &[], &[])
                .decision;
            (decision == SamplingDecision::Drop).then(new_context)
        }
        (None, None) => None,
    }
}

/// A new trace, not sampled.
fn new_context() -> TraceContext {
    let ids = RandomIdGenerator::default();
    TraceContext {
        traceparent: format!("00-{}-{}-00", ids.new_trace_id(), ids.new_span_id()),
        tracestate: None,
    }
}

/// The trace context a log-only root passes on, kept in its registry data.
struct PassedOn(TraceContext);

/// `span` (a log-only root) passing `cx` on.
pub(crate) fn passing_on(span: tracing::Span, cx: TraceContext) -> tracing::Span {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>();
        if let Some(data) = registry.and_then(|r| r.span_data(id)) {
            data.extensions_mut().insert(PassedOn(cx));
        }
    });
    span
}

/// The context a log-only root passes on.
pub(crate) fn passed_on(span: &tracing::Span) -> Option<TraceContext> {
    span.with_subscriber(|(id, dispatch)| {
        let data = dispatch
            .downcast_ref::<tracing_subscriber::Registry>()?
            .span_data(id)?;
        data.extensions().get::<PassedOn>().map(|p| p.0.clone())
    })?
}

/// The trace id of a well-formed `traceparent`.
pub(crate) fn trace_id_of(cx: &TraceContext) -> &str {
    &cx.traceparent[3..35]
}
