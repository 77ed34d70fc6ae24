//! A tool plan, as requested, and the checks it must pass before it becomes a saga.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use crate::event::Origin;
use crate::policy::ToolPolicy;

/// Attempts per step (and per compensation) when neither the step nor the plan says.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Upper bound on `max_attempts`, so a plan cannot make a saga retry forever.
pub const MAX_ATTEMPTS_CAP: u32 = 10;
/// Upper bound on a step's `timeout_ms` (10 minutes): a step holding a worker longer than
/// that should be its own job, not a saga step.
pub const MAX_TIMEOUT_MS: u64 = 10 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub name: String,
    pub tool: ToolCall,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compensate: Option<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// `"http"`, `"exec"` or `"mcp:<server>/<tool>"`.
    pub tool: String,
    pub args: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("plan has no steps")]
    Empty,
    #[error(
        "plan has {count} steps, the policy allows at most {max}; raise `max_steps` ([tool_exec.tenants.<tenant>] or [tool_exec.default_policy], and a query's `tool_policy.max_steps`)"
    )]
    TooManySteps { count: usize, max: usize },
    #[error("plan max_attempts {value} is outside 1..={MAX_ATTEMPTS_CAP}")]
    PlanMaxAttempts { value: u32 },
    #[error("step {index} has an empty name")]
    EmptyName { index: usize },
    #[error("step {index} ({name:?}) reuses the name of step {first}")]
    DuplicateName {
        index: usize,
        name: String,
        first: usize,
    },
    #[error(
        "step {index} ({name:?}): tool {tool:?} is not allowed by the policy; allow it in the tenant's `allowed_tools` ([tool_exec.tenants.<tenant>], or [tool_exec.default_policy]) and, for a query's plan, in its `tool_policy.tools`"
    )]
    ToolNotAllowed {
        index: usize,
        name: String,
        tool: String,
    },
    #[error(
        "step {index} ({name:?}): compensation tool {tool:?} is not allowed by the policy; allow it in the tenant's `allowed_tools` ([tool_exec.tenants.<tenant>], or [tool_exec.default_policy]) and, for a query's plan, in its `tool_policy.tools`"
    )]
    CompensationNotAllowed {
        index: usize,
        name: String,
        tool: String,
    },
    #[error("step {index} ({name:?}): timeout_ms {value} is outside 1..={MAX_TIMEOUT_MS}")]
    Timeout {
        index: usize,
        name: String,
        value: u64,
    },
    #[error("step {index} ({name:?}): max_attempts {value} is outside 1..={MAX_ATTEMPTS_CAP}")]
    StepMaxAttempts {
        index: usize,
        name: String,
        value: u32,
    },
    #[error(
        "plans proposed by consensus are not allowed by the policy; set `allow_from_consensus = true` for the tenant ([tool_exec.tenants.<tenant>]) and `tool_policy.allowed` on the query"
    )]
    ConsensusNotAllowed,
}

impl Plan {
    /// The plan an expert's answer spells out, if it is one: the whole answer, or the JSON inside
    /// a fenced code block, reads as a plan. Anything else is an answer, not a plan.
    pub fn from_answer(answer: &str) -> Option<Plan> {
        let text = answer.trim();
        let text = match text.strip_prefix("```") {
            Some(fenced) => {
                let body = fenced.strip_suffix("```")?;
                // The fence's info string (`json`) runs to the end of its line.
                body.split_once('\n').map_or(body, |(_, rest)| rest)
            }
            None => text,
        };
        let plan: Plan = serde_json::from_str(text.trim()).ok()?;
        (!plan.steps.is_empty()).then_some(plan)
    }

    /// Checks the plan against `policy`, reporting the first fault in step order.
    pub fn validate(&self, policy: &ToolPolicy) -> Result<(), PlanError> {
        if self.steps.is_empty() {
            return Err(PlanError::Empty);
        }
        if self.steps.len() > policy.max_steps {
            return Err(PlanError::TooManySteps {
                count: self.steps.len(),
                max: policy.max_steps,
            });
        }
        if let Some(value) = self.max_attempts
            && !(1..=MAX_ATTEMPTS_CAP).contains(&value)
        {
            return Err(PlanError::PlanMaxAttempts { value });
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (index, step) in self.steps.iter().enumerate() {
            step.validate(index, policy)?;
            if let Some(&first) = seen.get(step.name.as_str()) {
                return Err(PlanError::DuplicateName {
                    index,
                    name: step.name.clone(),
                    first,
                });
            }
            seen.insert(&step.name, index);
        }
        Ok(())
    }

    /// [`Plan::validate`] plus the origin check, which needs to know who proposed the plan.
    pub fn validate_request(&self, policy: &ToolPolicy, origin: &Origin) -> Result<(), PlanError> {
        if matches!(origin, Origin::Consensus { .. }) && !policy.allow_from_consensus {
            return Err(PlanError::ConsensusNotAllowed);
        }
        self.validate(policy)
    }

    /// How many times step `index` (and separately its compensation) may be tried.
    pub fn attempts_for(&self, index: usize) -> u32 {
        self.steps
            .get(index)
            .and_then(|s| s.max_attempts)
            .or(self.max_attempts)
            .unwrap_or(DEFAULT_MAX_ATTEMPTS)
            // An unvalidated 0 would otherwise mean "fail without trying".
            .max(1)
    }
}

impl Step {
    fn validate(&self, index: usize, policy: &ToolPolicy) -> Result<(), PlanError> {
        let name = || self.name.clone();
        if self.name.trim().is_empty() {
            return Err(PlanError::EmptyName { index });
        }
        if !policy.allows(&self.tool.tool) {
            return Err(PlanError::ToolNotAllowed {
                index,
                name: name(),
                tool: self.tool.tool.clone(),
            });
        }
        if let Some(undo) = &self.compensate
            && !policy.allows(&undo.tool)
        {
            return Err(PlanError::CompensationNotAllowed {
                index,
                name: name(),
                tool: undo.tool.clone(),
            });
        }
        if let Some(value) = self.timeout_ms
            && (value == 0 || value > MAX_TIMEOUT_MS)
        {
            return Err(PlanError::Timeout {
                index,
                name: name(),
                value,
            });
        }
        if let Some(value) = self.max_attempts
            && !(1..=MAX_ATTEMPTS_CAP).contains(&value)
        {
            return Err(PlanError::StepMaxAttempts {
                index,
                name: name(),
                value,
            });
        }
        Ok(())
    }
}
