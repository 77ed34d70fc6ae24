//! The spans of store calls, at the store's boundary (one per statement a caller waits for, never
//! one per row), named as the OpenTelemetry database conventions do: `INSERT events`, `SELECT
//! events`. A call made outside any span (a background loop's poll) makes none: it would start a
//! trace of its own for every poll, and nobody looks for those.

use tracing::Span;

/// What a call does to the events table.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operation {
    Insert,
    Select,
}

/// A span for one store call of `operation` on `rows` rows (events appended or streams read),
/// inside the current span; [`Span::none`] when there is no current span or its trace is not
/// recorded.
pub(crate) fn store_span(operation: Operation, rows: usize) -> Span {
    if Span::current().is_none() || !quorum_trace::recording() {
        return Span::none();
    }
    let name = match operation {
        Operation::Insert => "INSERT",
        Operation::Select => "SELECT",
    };
    tracing::info_span!(
        "store",
        otel.name = %format_args!("{name} events"),
        otel.kind = "client",
        db.system.name = "postgresql",
        db.operation.name = name,
        db.collection.name = "events",
        quorum.rows = rows,
    )
}
