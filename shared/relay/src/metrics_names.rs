//! The relay's metrics. Labels are bounded: none.

/// 1 while this process leads, 0 otherwise.
pub const LEADER: &str = "quorum_relay_leader";
/// Events published (including republished ones).
pub const PUBLISHED: &str = "quorum_relay_published_total";
/// Events republished because the stream had lost them.
pub const REPUBLISHED: &str = "quorum_relay_republished_total";
/// Seconds between an event's commit and its publish ack, for the newest event of the last batch.
pub const LAG: &str = "quorum_relay_lag_seconds";
/// Events held back waiting for their stream predecessor.
pub const HELD: &str = "quorum_relay_held_events";
