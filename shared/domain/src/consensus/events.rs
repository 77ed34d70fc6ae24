//! The data of the consensus events, `quorum.consensus.reached` and `quorum.consensus.failed`.

use serde::{Deserialize, Serialize};

use super::SameBy;
use crate::query::Strategy;

/// The data of `quorum.consensus.reached`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsensusReached {
    pub answer: String,
    pub strategy: Strategy,
    /// The winning group's share of the answering experts' weight, 0 to 1.
    pub agreement: f64,
    pub majority: Vec<String>,
    pub dissent: Vec<Dissent>,
    /// Under the `judge` strategy: who merged the answers into `answer`, or why it could not (the
    /// most central answer of the largest group stands then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<Judged>,
    /// The saga (`saga/<id>`) the agreed answer started, when it is a tool plan the query lets a
    /// consensus propose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saga: Option<String>,
    /// How the answers were found to agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grouping: Option<GroupingInfo>,
    /// Experts that had not answered when the quorum agreed: their answers, when they come, are
    /// recorded as late and change nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
}

/// The provenance of a grouping: the method that compared the answers, and why the majority is one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupingInfo {
    /// `canonical` (offline rules alone), `embeddings` or `judge`: the method asked about the
    /// pairs the offline rules left undecided.
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    /// Why the method gave nothing, when it failed: the offline rules alone decided then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Each pair of the majority found the same, and by which rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
}

/// Two experts of the majority whose answers were found the same, and how.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub a: String,
    pub b: String,
    pub by: SameBy,
}

/// The judge's part in a consensus: its provenance, and its error when it gave no merge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub expert: String,
    pub provider: String,
    pub model: String,
    pub latency_ms: u64,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why no consensus was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// Every expert answered or failed, and no group reached the quorum.
    NoQuorum,
    /// The deadline passed before the quorum was reached.
    Deadline,
    /// No expert answered.
    AllFailed,
}

/// The data of `quorum.consensus.failed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConsensusFailed {
    pub reason: FailureReason,
    pub strategy: Strategy,
    /// The best group's share of the answering experts' weight (0 when none answered).
    pub agreement: f64,
    pub dissent: Vec<Dissent>,
}

/// An expert outside the majority: its answer, or why it had none.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dissent {
    pub expert: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
