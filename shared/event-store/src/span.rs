//! The spans of store calls, at the store's boundary (one per statement a caller waits for, never
//! one per row), named as the OpenTelemetry database conventions do: `INSERT events`, `SELECT
//! events`. A call made outside any span (a background loop's poll) makes none: it would start a
//! trace of its own for every poll, and nobody looks for those. They are leaves
//! ([`quorum_trace::Leaf`]): nothing is made under them, and most of a query's spans are these.

use quorum_trace::{KeyValue, Leaf, SpanKind};

/// What a call does to the events table.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Operation {
    Insert,
    Select,
}

/// A span for one store call of `operation` on `rows` rows (events appended or streams read),
/// under the current span; [`Leaf::none`] when there is no current span or its trace is not
/// recorded. It ends when dropped.
pub(crate) fn store_span(operation: Operation, rows: usize) -> Leaf {
    let (name, operation) = match operation {
        Operation::Insert => ("INSERT events", "INSERT"),
        Operation::Select => ("SELECT events", "SELECT"),
    };
    Leaf::child(
        name,
        SpanKind::Client,
        vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.operation.name", operation),
            KeyValue::new("db.collection.name", "events"),
            KeyValue::new("quorum.rows", rows as i64),
        ],
    )
}
