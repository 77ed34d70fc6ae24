//! The W3C Trace Context headers, read and written as the SDK's `TraceContextPropagator` does,
//! without its map of strings: they are read for every message received and written for every
//! message sent.

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// A W3C trace context as it travels with a message: the `traceparent` and `tracestate` headers
/// (or the CloudEvents extensions of the same names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    pub traceparent: String,
    pub tracestate: Option<String>,
}

impl TraceContext {
    /// The context that names `span` to its children. W3C by definition, whatever the global
    /// propagator is: these are the `traceparent` and `tracestate` CloudEvents extensions, not a
    /// free-form carrier. Written here rather than by the SDK's propagator, which goes through a
    /// map of strings: this runs for every message sent.
    pub fn of(span: &SpanContext) -> Self {
        let traceparent = format!(
            "00-{}-{}-{:02x}",
            span.trace_id(),
            span.span_id(),
            span.trace_flags().to_u8()
        );
        let tracestate = Some(span.trace_state().header()).filter(|s| !s.is_empty());
        TraceContext {
            traceparent,
            tracestate,
        }
    }
}

/// The remote span a well-formed `traceparent` (and `tracestate`) names, read as the SDK's
/// `TraceContextPropagator` reads them (only the sampled flag is kept), without its map of
/// strings: this runs for every message received.
pub(crate) fn remote_parent(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
    if !is_traceparent(traceparent) {
        return None;
    }
    let trace_id = TraceId::from_hex(&traceparent[3..35]).ok()?;
    let span_id = SpanId::from_hex(&traceparent[36..52]).ok()?;
    let flags = u8::from_str_radix(&traceparent[53..55], 16).ok()?;
    let state = tracestate
        .and_then(well_formed_state)
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let parent = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        state,
    );
    parent.is_valid().then_some(parent)
}

/// A `tracestate` of at most 512 printable characters, trimmed; `None` for another.
pub(crate) fn well_formed_state(value: &str) -> Option<&str> {
    Some(value.trim())
        .filter(|s| !s.is_empty() && s.len() <= 512 && s.bytes().all(|b| (0x20..0x7f).contains(&b)))
}

/// `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`, lowercase, ids not all zero.
pub(crate) fn is_traceparent(value: &str) -> bool {
    let b = value.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b[r].iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    let nonzero = |r: std::ops::Range<usize>| b[r].iter().any(|&c| c != b'0');
    b.len() == 55
        && b.starts_with(b"00-")
        && b[35] == b'-'
        && b[52] == b'-'
        && hex(3..35)
        && hex(36..52)
        && hex(53..55)
        && nonzero(3..35)
        && nonzero(36..52)
}

/// The trace id of `traceparent` if it is well-formed: the `trace_id` field of a span that will
/// continue it, given when the span is made (recording a field later costs every layer a visit).
pub(crate) fn trace_id_in(traceparent: Option<&str>) -> Option<&str> {
    traceparent.filter(|p| is_traceparent(p)).map(|p| &p[3..35])
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;
    use crate::tests::PARENT;
    use crate::{of, set_parent_from, test_subscriber};

    /// What `of` writes and `set_parent_from` reads are what the SDK's W3C propagator writes and
    /// reads, without its map of strings.
    #[test]
    fn the_context_is_read_and_written_as_the_w3c_propagator_does() {
        use opentelemetry::propagation::TextMapPropagator as _;
        use opentelemetry_sdk::propagation::TraceContextPropagator;

        let (subscriber, _provider) = test_subscriber();
        tracing::subscriber::with_default(subscriber, || {
            for (parent, state) in [
                (PARENT, Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")),
                (
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
                    None,
                ),
                (
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
                    None,
                ),
            ] {
                let mut carrier = std::collections::HashMap::from([(
                    "traceparent".to_owned(),
                    parent.to_owned(),
                )]);
                if let Some(state) = state {
                    carrier.insert("tracestate".to_owned(), state.to_owned());
                }
                let extracted = TraceContextPropagator::new().extract(&carrier);
                let read = remote_parent(parent, state).expect("well-formed");
                assert_eq!(&read, extracted.span().span_context(), "{parent}");

                let span = tracing::info_span!("handle");
                assert!(set_parent_from(parent, state, &span));
                let mut written = std::collections::HashMap::new();
                TraceContextPropagator::new().inject_context(&span.context(), &mut written);
                let ours = of(&span).expect("a context");
                assert_eq!(
                    Some(&ours.traceparent),
                    written.get("traceparent"),
                    "{parent}"
                );
                assert_eq!(
                    ours.tracestate.as_ref(),
                    written.get("tracestate").filter(|s| !s.is_empty()),
                    "{parent}"
                );
            }
        });
    }
}
