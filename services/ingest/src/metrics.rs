//! Ingest's own metrics (every API's request durations and counts are quorum-http's). Labels are
//! bounded: never ids.

/// Counter: events accepted. Label: `outcome`, `stored` or `duplicate`.
pub const EVENTS_TOTAL: &str = "quorum_ingest_events_total";
/// Histogram: events per group commit (how well concurrent requests coalesce).
pub const GROUP_EVENTS: &str = "quorum_ingest_group_commit_events";
/// Gauge: events admitted and not yet answered, against `flow.max_in_flight_events`.
pub const ADMITTED_EVENTS: &str = "quorum_ingest_admitted_events";
/// Gauge: `flow.max_in_flight_events`, the most that may be admitted at once.
pub const ADMISSION_CAPACITY_EVENTS: &str = "quorum_ingest_admission_capacity_events";
