//! The lookups a query's `GET` makes on every call, by a unique key alone.
//!
//! Each names the row by its unique key and returns its tenant, which the caller compares. With
//! `AND tenant = $2` in the `WHERE` clause instead, the prepared statement's generic plan (which
//! Postgres settles on after five executions, knowing no parameter's value) ANDed the unique index
//! with the tenant's index and read every row of the tenant on each call: 29,000 index entries per
//! `GET` at 6,000 queries, most of Postgres's CPU in `bench pipeline`'s closed loop, and growing
//! with the tenant's history. Without a tenant predicate no plan but the unique probe is possible.

/// The tenant of query `$1`'s submission (its stream's first event): one probe of the unique
/// `(stream_id, stream_version)` index. No row: never submitted.
pub const SUBMITTED_BY: &str =
    "SELECT tenant FROM events WHERE stream_id = 'query/' || $1 AND stream_version = 1";

/// The tenant of query `$1` in the read model and the query as the API shows it (times formatted
/// with `$2`): one probe of the primary key. No row: not in the read model (yet).
pub const QUERY_VIEW: &str = "SELECT tenant,
        jsonb_build_object('query_id', query_id, 'stream', stream_id, 'status', status,
            'question', question, 'experts', experts, 'consensus', consensus,
            'submitted_at', to_char(submitted_at AT TIME ZONE 'UTC', $2),
            'decided_at', to_char(decided_at AT TIME ZONE 'UTC', $2))
     FROM queries WHERE query_id = $1";
