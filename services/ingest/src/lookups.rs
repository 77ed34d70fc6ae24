//! The lookups a query's `GET` makes on every call, by a unique key alone.
//!
//! Each names the row by its unique key and returns its tenant, which the caller compares. With
//! `AND tenant = $2` in the `WHERE` clause instead, the prepared statement's generic plan (which
//! Postgres settles on after five executions, knowing no parameter's value) ANDed the unique index
//! with the tenant's index and read every row of the tenant on each call: 29,000 index entries per
//! `GET` at 6,000 queries, most of Postgres's CPU in `bench pipeline`'s closed loop, and growing
//! with the tenant's history. Without a tenant predicate no plan but the unique probe is possible.

/// The `$2` of the lookups below: RFC 3339 in UTC with milliseconds, as every API and the CLI
/// write times.
pub const TIME_FORMAT: &str = r#"YYYY-MM-DD"T"HH24:MI:SS.MS"Z""#;

/// The query as the API shows it, from the `queries` row `q` (times formatted with `$2`); a macro
/// so that both lookups below say it once.
macro_rules! view_of_q {
    () => {
        "jsonb_build_object('query_id', q.query_id, 'stream', q.stream_id, 'status', q.status,
            'question', q.question, 'experts', q.experts, 'consensus', q.consensus,
            'submitted_at', to_char(q.submitted_at AT TIME ZONE 'UTC', $2),
            'decided_at', to_char(q.decided_at AT TIME ZONE 'UTC', $2))"
    };
}

/// A `GET`'s first lookup, in one round trip: the tenant of query `$1`'s submission (its stream's
/// first event, one probe of the unique `(stream_id, stream_version)` index) and, when the read
/// model has it, the query as the API shows it (one probe of its primary key). No row: never
/// submitted; a `NULL` view: submitted, not in the read model yet.
pub const SUBMISSION_AND_VIEW: &str = concat!(
    "SELECT e.tenant, CASE WHEN q.query_id IS NULL THEN NULL ELSE ",
    view_of_q!(),
    " END
     FROM events e LEFT JOIN queries q ON q.query_id = $1
     WHERE e.stream_id = 'query/' || $1 AND e.stream_version = 1"
);

/// The tenant of query `$1` in the read model and the query as the API shows it (times formatted
/// with `$2`): one probe of the primary key. No row: not in the read model (yet). What a waiter
/// reads again when it is woken.
pub const QUERY_VIEW: &str = concat!(
    "SELECT q.tenant, ",
    view_of_q!(),
    " FROM queries q WHERE q.query_id = $1"
);

/// The queries `$1` (an array of ids) in the read model, each with its tenant and as the API shows
/// it: what the waits' listener reads once for every waiter that a notification of decisions
/// wakes, instead of each reading its own. One probe of the primary key per id.
pub const QUERY_VIEWS: &str = concat!(
    "SELECT q.query_id, q.tenant, ",
    view_of_q!(),
    " FROM queries q WHERE q.query_id = ANY($1)"
);
