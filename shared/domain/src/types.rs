//! The event types Quorum defines (DESIGN §2). Versioned by suffix when a type's data changes shape.

pub const QUERY_SUBMITTED: &str = "quorum.query.submitted";
pub const EXPERT_RESPONDED: &str = "quorum.expert.responded";
pub const EXPERT_FAILED: &str = "quorum.expert.failed";
pub const CONSENSUS_REACHED: &str = "quorum.consensus.reached";
pub const CONSENSUS_FAILED: &str = "quorum.consensus.failed";
pub const DLQ_PARKED: &str = "quorum.dlq.parked";
pub const DLQ_REPLAYED: &str = "quorum.dlq.replayed";
pub const DLQ_DISCARDED: &str = "quorum.dlq.discarded";
pub const AUDIT_CHECKPOINT: &str = "quorum.audit.checkpoint";
pub const REPLAY_REQUESTED: &str = "quorum.replay.requested";
pub const REPLAY_COMPLETED: &str = "quorum.replay.completed";
pub const TOOL_PLAN_REQUESTED: &str = "quorum.tool.plan.requested";
