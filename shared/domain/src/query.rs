//! The data of `quorum.query.submitted`: what is asked, of whom, and how the answer is decided.
//! `schemas/quorum.query.submitted.json` describes the same shape; a test in `quorum-schemas` keeps
//! them in step, because ingest checks raw CloudEvents against the schema alone and every consumer
//! then reads them with this type.

use serde::{Deserialize, Serialize};

/// Longest question accepted, in bytes of UTF-8.
pub const MAX_QUESTION_BYTES: usize = 32 * 1024;
/// Longest expert name accepted, in bytes (names are ASCII).
pub const MAX_EXPERT_NAME_BYTES: usize = 64;
/// Most experts one query may name: a panel, not a crowd; every name is checked before any work.
pub const MAX_EXPERTS: usize = 64;
/// The deadline used when a query gives none.
pub const DEFAULT_DEADLINE_MS: u64 = 30_000;
/// The deadlines a query may ask for.
pub const DEADLINE_MS: std::ops::RangeInclusive<u64> = 100..=600_000;

/// A question for the experts: whom to ask, how many must agree, by when, and how.
///
/// Deserializing checks shape only; [`QuerySubmitted::validate`] checks the rules.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuerySubmitted {
    /// What is asked: not blank, at most [`MAX_QUESTION_BYTES`].
    pub question: String,
    /// Free-form context handed to every expert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<serde_json::Value>,
    /// The experts to ask, by name; all configured experts when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experts: Option<Vec<String>>,
    /// Answers that must agree (k of n); a simple majority of the experts asked when absent.
    #[serde(
        default,
        deserialize_with = "whole::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub quorum: Option<u32>,
    /// How long the consensus waits for answers, within [`DEADLINE_MS`].
    #[serde(default = "default_deadline_ms", deserialize_with = "whole::required")]
    pub deadline_ms: u64,
    /// How the answers are merged into one.
    #[serde(default)]
    pub strategy: Strategy,
    /// When the consensus is decided: as soon as a quorum of the answers received agree, or only
    /// once every expert answered; the strategy's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decide: Option<DecideWhen>,
    /// Relative tolerance within which two numbers are the same answer (`0.01` is 1 %), 0 to 1;
    /// exact when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Whether tools may be called on the way; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_policy: Option<ToolPolicy>,
}

fn default_deadline_ms() -> u64 {
    DEFAULT_DEADLINE_MS
}

/// How a consensus is built (DESIGN §7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Normalised exact answers, weighted.
    #[default]
    Majority,
    /// The most central answer of the largest cluster of similar answers.
    Similarity,
    /// One expert merges the others' answers.
    Judge,
}

impl Strategy {
    /// Whether a query of this strategy decides as soon as a quorum agrees (ADR 18): `majority`
    /// and `similarity` do, so one slow model does not set everyone's latency; `judge` waits for
    /// every answer, since the judge merges them all.
    pub fn decides_early(self) -> bool {
        self != Strategy::Judge
    }
}

/// When a consensus is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecideWhen {
    /// As soon as a quorum of the answers received agree; later answers are recorded as late.
    Quorum,
    /// Once every expert asked has answered or failed (or at the deadline).
    All,
}

impl QuerySubmitted {
    /// Whether this query decides as soon as a quorum agrees.
    pub fn decides_early(&self) -> bool {
        match self.decide {
            Some(d) => d == DecideWhen::Quorum,
            None => self.strategy.decides_early(),
        }
    }
}

/// Whether the consensus may call for tools: when the experts agree on a tool plan (their answer
/// is one), the consensus starts it as a saga within this policy, which narrows the tenant's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicy {
    /// Off unless asked for: a tool can have effects outside Quorum.
    #[serde(default)]
    pub allowed: bool,
    /// The tools a plan may call: names (`http`) or prefixes ending in `*` (`mcp:time/*`); every
    /// tool the tenant allows when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    /// Most tool steps one plan may take; the service's limit when absent.
    #[serde(
        default,
        deserialize_with = "whole::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_steps: Option<u32>,
}

/// A rule a query breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct QueryError {
    /// The field at fault, as a JSON pointer without its leading `/` (`experts/1`).
    pub field: String,
    /// What the field must be.
    pub reason: String,
}

fn err(field: &str, reason: impl Into<String>) -> Result<(), QueryError> {
    Err(QueryError {
        field: field.to_owned(),
        reason: reason.into(),
    })
}

impl QuerySubmitted {
    /// Checks the rules serde does not: the first broken one, by field.
    pub fn validate(&self) -> Result<(), QueryError> {
        if self.question.trim().is_empty() {
            return err("question", "must not be blank");
        }
        if self.question.len() > MAX_QUESTION_BYTES {
            return err("question", format!("at most {MAX_QUESTION_BYTES} bytes"));
        }
        if let Some(experts) = &self.experts {
            if experts.is_empty() {
                return err(
                    "experts",
                    "name at least one expert, or leave it out for all",
                );
            }
            if experts.len() > MAX_EXPERTS {
                return err("experts", format!("at most {MAX_EXPERTS} experts"));
            }
            let mut seen = std::collections::HashSet::with_capacity(experts.len());
            for (i, name) in experts.iter().enumerate() {
                if !is_expert_name(name) {
                    return err(
                        &format!("experts/{i}"),
                        "1-64 characters of a-z, 0-9, '_' or '-'",
                    );
                }
                if !seen.insert(name) {
                    return err(&format!("experts/{i}"), format!("{name} is named twice"));
                }
            }
        }
        if self.quorum == Some(0) {
            return err("quorum", "at least 1");
        }
        // The schema cannot compare two fields, so this rule is the type's alone: an event that
        // breaks it still deserializes downstream, and its quorum is simply never met.
        if let (Some(q), Some(experts)) = (self.quorum, &self.experts)
            && q as usize > experts.len()
        {
            return err(
                "quorum",
                format!("{q} of {} experts can never agree", experts.len()),
            );
        }
        if !DEADLINE_MS.contains(&self.deadline_ms) {
            return err(
                "deadline_ms",
                format!("between {} and {}", DEADLINE_MS.start(), DEADLINE_MS.end()),
            );
        }
        if let Some(t) = self.tolerance
            && !(0.0..=1.0).contains(&t)
        {
            return err("tolerance", "between 0 and 1 (0.01 is 1 %)");
        }
        let tools = self.tool_policy.as_ref().and_then(|p| p.tools.as_deref());
        for (i, tool) in tools.unwrap_or_default().iter().enumerate() {
            // Characters, as the schema counts them.
            if !(1..=200).contains(&tool.chars().count()) {
                return err(
                    &format!("tool_policy/tools/{i}"),
                    "a tool name or prefix of 1-200 characters",
                );
            }
        }
        Ok(())
    }
}

fn is_expert_name(name: &str) -> bool {
    (1..=MAX_EXPERT_NAME_BYTES).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Integers read the way JSON Schema reads them: `1000.0` is the integer 1000. Without this, an
/// event the schema admits at the edge (a Python client writes `1000.0`) would be unreadable to
/// every consumer downstream.
mod whole {
    use serde::de::{Deserialize, Deserializer, Error};

    pub fn required<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<T, D::Error> {
        from_number(serde_json::Number::deserialize(d)?)
    }

    pub fn option<'de, D: Deserializer<'de>, T: TryFrom<u64>>(d: D) -> Result<Option<T>, D::Error> {
        Option::<serde_json::Number>::deserialize(d)?
            .map(from_number)
            .transpose()
    }

    fn from_number<T: TryFrom<u64>, E: Error>(n: serde_json::Number) -> Result<T, E> {
        let whole = n.as_u64().or_else(|| {
            // 2^64 as f64 is exclusive: the cast below saturates rather than fail.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..u64::MAX as f64).contains(f))
                .map(|f| f as u64)
        });
        whole
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| E::custom(format!("{n} is not a whole number in range")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<QuerySubmitted, QueryError> {
        let q: QuerySubmitted = serde_json::from_str(json).map_err(|e| QueryError {
            field: String::new(),
            reason: e.to_string(),
        })?;
        q.validate()?;
        Ok(q)
    }

    #[test]
    fn absent_fields_take_their_defaults() {
        let q = parse(r#"{"question":"Why?"}"#).unwrap();
        assert_eq!(q.deadline_ms, DEFAULT_DEADLINE_MS);
        assert_eq!(q.strategy, Strategy::Majority);
        assert_eq!((q.experts, q.quorum, q.tool_policy), (None, None, None));
        let q = parse(r#"{"question":"Why?","experts":null,"quorum":null,"tool_policy":{}}"#);
        assert_eq!(q.unwrap().tool_policy, Some(ToolPolicy::default()));
    }

    #[test]
    fn whole_floats_are_integers_and_others_are_not() {
        let q = parse(r#"{"question":"q","deadline_ms":1000.0,"quorum":1.0}"#).unwrap();
        assert_eq!((q.deadline_ms, q.quorum), (1000, Some(1)));
        for bad in [
            r#"{"question":"q","deadline_ms":1000.5}"#,
            r#"{"question":"q","deadline_ms":-1000}"#,
            r#"{"question":"q","quorum":4294967296}"#,
            r#"{"question":"q","quorum":1e300}"#,
            r#"{"question":"q","quorum":"1"}"#,
            r#"{"question":"q","deadline_ms":null}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn each_rule_names_its_field() {
        let long = format!(
            r#"{{"question":"{}"}}"#,
            "é".repeat(MAX_QUESTION_BYTES / 2 + 1)
        );
        let name65 = format!(r#"{{"question":"q","experts":["{}"]}}"#, "a".repeat(65));
        let names: Vec<String> = (0..=MAX_EXPERTS).map(|i| format!("\"e{i}\"")).collect();
        let many_experts = format!(r#"{{"question":"q","experts":[{}]}}"#, names.join(","));
        for (doc, field) in [
            (r#"{"question":" \n"}"#, "question"),
            (long.as_str(), "question"),
            (r#"{"question":"q","experts":[]}"#, "experts"),
            (r#"{"question":"q","experts":["ok","A"]}"#, "experts/1"),
            (name65.as_str(), "experts/0"),
            (r#"{"question":"q","experts":["a","b","a"]}"#, "experts/2"),
            (r#"{"question":"q","quorum":0}"#, "quorum"),
            (r#"{"question":"q","experts":["a"],"quorum":2}"#, "quorum"),
            (r#"{"question":"q","deadline_ms":99}"#, "deadline_ms"),
            (r#"{"question":"q","deadline_ms":600001}"#, "deadline_ms"),
            (r#"{"question":"q","tolerance":1.5}"#, "tolerance"),
            (many_experts.as_str(), "experts"),
            (r#"{"question":"q","tolerance":-0.1}"#, "tolerance"),
        ] {
            assert_eq!(parse(doc).unwrap_err().field, field, "{doc}");
        }
        let name64 = format!(r#"{{"question":"q","experts":["{}"]}}"#, "a".repeat(64));
        assert!(parse(&name64).is_ok());
    }

    #[test]
    fn shape_errors_are_serde_errors() {
        for bad in [
            r#"{"question":"q","extra":1}"#,
            r#"{"question":"q","strategy":"vote"}"#,
            r#"{"question":"q","decide":"soon"}"#,
            r#"{"question":"q","tool_policy":{"allowed":true,"steps":3}}"#,
            r#"{"experts":["a"]}"#,
        ] {
            assert_eq!(parse(bad).unwrap_err().field, "", "{bad}");
        }
    }
}
