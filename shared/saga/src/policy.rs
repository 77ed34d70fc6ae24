//! Which tools a plan may call, and how a tenant's policy narrows with a query's.

use serde::{Deserialize, Serialize};

/// What a tenant (or a single query) lets a plan do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicy {
    /// Exact tool names (`"http"`) or prefixes ending in `*` (`"mcp:time/*"`).
    pub allowed_tools: Vec<String>,
    pub max_steps: usize,
    /// Plans proposed by a consensus run are model output, so they are refused unless opted in.
    #[serde(default)]
    pub allow_from_consensus: bool,
}

impl ToolPolicy {
    /// Whether `tool` matches any allowed pattern.
    pub fn allows(&self, tool: &str) -> bool {
        // An empty name would match a bare "*" and then mean nothing to the executor.
        !tool.is_empty() && self.allowed_tools.iter().any(|p| pattern_matches(p, tool))
    }

    /// The narrower of the two: only tools both allow, the smaller step budget, and consensus
    /// plans only if both opt in. A query can restrict a tenant, never widen it.
    pub fn merge(tenant: &ToolPolicy, query: Option<&ToolPolicy>) -> ToolPolicy {
        let Some(query) = query else {
            return tenant.clone();
        };
        let mut allowed_tools: Vec<String> = Vec::new();
        for a in &tenant.allowed_tools {
            for b in &query.allowed_tools {
                if let Some(p) = intersect(a, b)
                    && !allowed_tools.contains(&p)
                {
                    allowed_tools.push(p);
                }
            }
        }
        ToolPolicy {
            allowed_tools,
            max_steps: tenant.max_steps.min(query.max_steps),
            allow_from_consensus: tenant.allow_from_consensus && query.allow_from_consensus,
        }
    }
}

fn pattern_matches(pattern: &str, tool: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => tool.starts_with(prefix),
        None => pattern == tool,
    }
}

/// The pattern matching exactly the tools both `a` and `b` match, if any. With one prefix
/// inside the other, the longer prefix is that set, so pairwise results stay exact.
fn intersect(a: &str, b: &str) -> Option<String> {
    match (a.strip_suffix('*'), b.strip_suffix('*')) {
        (None, None) => (a == b).then(|| a.to_owned()),
        (None, Some(_)) => pattern_matches(b, a).then(|| a.to_owned()),
        (Some(_), None) => pattern_matches(a, b).then(|| b.to_owned()),
        (Some(pa), Some(pb)) => {
            if pa.starts_with(pb) {
                Some(a.to_owned())
            } else if pb.starts_with(pa) {
                Some(b.to_owned())
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(tools: &[&str], max_steps: usize, consensus: bool) -> ToolPolicy {
        ToolPolicy {
            allowed_tools: tools.iter().map(|s| s.to_string()).collect(),
            max_steps,
            allow_from_consensus: consensus,
        }
    }

    #[test]
    fn prefix_rule_matches_only_below_the_prefix() {
        let p = policy(&["http", "mcp:time/*"], 4, false);
        assert!(p.allows("http"));
        assert!(p.allows("mcp:time/now"));
        assert!(!p.allows("mcp:timer/now"));
        assert!(!p.allows("mcp:files/read"));
        assert!(!p.allows("https"));
        assert!(!p.allows("exec"));
        assert!(!policy(&["*"], 1, false).allows(""));
    }

    #[test]
    fn merge_takes_the_narrower_policy() {
        let tenant = policy(&["http", "exec", "mcp:*"], 10, true);
        let query = policy(&["http", "mcp:time/*", "mcp:files/read", "ssh"], 3, false);
        let merged = ToolPolicy::merge(&tenant, Some(&query));
        assert_eq!(
            merged.allowed_tools,
            vec!["http", "mcp:time/*", "mcp:files/read"]
        );
        assert_eq!(merged.max_steps, 3);
        assert!(!merged.allow_from_consensus);
        assert!(!merged.allows("exec"));
        assert!(!merged.allows("ssh"));
        assert!(!merged.allows("mcp:files/write"));

        // Symmetric: a query cannot widen the tenant either way round.
        let reversed = ToolPolicy::merge(&query, Some(&tenant));
        assert_eq!(reversed.max_steps, 3);
        for tool in [
            "http",
            "exec",
            "ssh",
            "mcp:time/now",
            "mcp:files/read",
            "mcp:x/y",
        ] {
            assert_eq!(reversed.allows(tool), merged.allows(tool), "{tool}");
        }
    }

    #[test]
    fn merge_without_query_is_the_tenant_policy() {
        let tenant = policy(&["http"], 2, true);
        assert_eq!(ToolPolicy::merge(&tenant, None), tenant);
    }

    #[test]
    fn consensus_needs_both_to_opt_in() {
        let yes = policy(&["http"], 2, true);
        assert!(ToolPolicy::merge(&yes, Some(&yes)).allow_from_consensus);
        let no = policy(&["http"], 2, false);
        assert!(!ToolPolicy::merge(&no, Some(&yes)).allow_from_consensus);
    }

    #[test]
    fn consensus_defaults_to_false_and_unknown_fields_are_refused() {
        let p: ToolPolicy =
            serde_json::from_str(r#"{"allowed_tools":["http"],"max_steps":2}"#).unwrap();
        assert!(!p.allow_from_consensus);
        let err = serde_json::from_str::<ToolPolicy>(
            r#"{"allowed_tools":[],"max_steps":2,"allow_everything":true}"#,
        );
        assert!(err.is_err());
    }
}
