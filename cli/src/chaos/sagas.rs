//! The chaos workload's sagas: queries whose experts all answer with a tool plan, whose steps call
//! the recording service (`recorder`). One plan completes (two steps applied); the other's second
//! step is refused, so its first is undone (compensated). The checker reads each saga's end from
//! Postgres and its effects from the recording service.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use quorum_domain::TenantId;
use quorum_experts::ProviderConfig;
use quorum_experts::scripted::Rule;
use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use super::check::Counts;
use super::recorder::Effect;
use crate::commands::up_config::UpConfig;

/// How a saga of the workload must end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// Both steps applied.
    Completed,
    /// The second step refused, the first undone.
    Compensated,
}

impl Ending {
    /// The words in a question that make every expert answer with this ending's plan.
    pub fn question(self, n: u64) -> String {
        match self {
            Ending::Completed => format!("Run chaos-saga-completes number {n}"),
            Ending::Compensated => format!("Run chaos-saga-compensates number {n}"),
        }
    }

    fn marker(self) -> &'static str {
        match self {
            Ending::Completed => "chaos-saga-completes",
            Ending::Compensated => "chaos-saga-compensates",
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Ending::Completed => "quorum.tool.plan.completed",
            Ending::Compensated => "quorum.tool.plan.compensated",
        }
    }

    /// What the recording service must hold of a saga that ended so: path → step key.
    fn effects(self, saga: &str) -> BTreeSet<(String, String)> {
        let key =
            |step: usize, side: &str| quorum_saga::idempotency_key(saga, step, side == "undo");
        match self {
            Ending::Completed => [("do/reserve", key(0, "do")), ("do/charge", key(1, "do"))],
            Ending::Compensated => [
                ("do/reserve", key(0, "do")),
                ("undo/reserve", key(0, "undo")),
            ],
        }
        .into_iter()
        .map(|(path, key)| (path.to_owned(), key))
        .collect()
    }

    /// The plan every expert answers with.
    fn plan(self, recorder: SocketAddr) -> serde_json::Value {
        let call = |path: &str| json!({"tool": "http", "args": {"method": "POST", "url": format!("http://{recorder}/{path}")}});
        let charge = match self {
            Ending::Completed => json!({"name": "charge", "tool": call("do/charge"),
                                        "compensate": call("undo/charge")}),
            Ending::Compensated => json!({"name": "charge", "tool": call("refuse")}),
        };
        json!({"steps": [
            {"name": "reserve", "tool": call("do/reserve"), "compensate": call("undo/reserve")},
            charge,
        ]})
    }
}

/// The tool policy a saga query asks for.
pub fn tool_policy() -> serde_json::Value {
    json!({"allowed": true, "tools": ["http"], "max_steps": 2})
}

/// Makes the stack run the workload's sagas: every scripted expert answers a saga question with
/// its plan, the http tool may call the recording service, and the workload's tenant lets a
/// consensus start a plan.
pub fn configure(config: &mut UpConfig, recorder: SocketAddr) {
    for expert in &mut config.experts {
        if let ProviderConfig::Scripted(scripted) = &mut expert.provider {
            for ending in [Ending::Completed, Ending::Compensated] {
                scripted.rules.insert(
                    0,
                    Rule {
                        contains: ending.marker().into(),
                        answer: ending.plan(recorder).to_string(),
                    },
                );
            }
        }
    }
    let tools = &mut config.tool_exec;
    tools.http.allowed_hosts.push(recorder.to_string());
    let mut policy = tools.default_policy.clone();
    policy.allowed_tools = vec!["http".into()];
    policy.allow_from_consensus = true;
    tools.tenants.insert(super::TENANT.into(), policy);
}

/// A saga as Postgres holds it.
#[derive(Clone, Debug, Default)]
pub struct Held {
    /// The saga's id (its stream without `saga/`).
    pub id: String,
    /// Its terminal events, in order: one, once it has ended.
    pub ends: Vec<String>,
}

/// Query id → the sagas its consensus started, for `tenant`.
pub async fn read(pool: &PgPool, tenant: &TenantId) -> anyhow::Result<BTreeMap<String, Vec<Held>>> {
    let rows: Vec<(String, Option<String>, Option<Vec<String>>)> = sqlx::query_as(
        "SELECT stream_id,
                max(correlation_id) FILTER (WHERE type = 'quorum.tool.plan.requested'),
                array_agg(type ORDER BY stream_version) FILTER (WHERE type IN
                    ('quorum.tool.plan.completed', 'quorum.tool.plan.compensated', 'quorum.tool.plan.failed'))
         FROM events WHERE tenant = $1 AND stream_id LIKE 'saga/%' GROUP BY stream_id",
    )
    .bind(tenant.as_str())
    .fetch_all(pool)
    .await?;
    let mut sagas: BTreeMap<String, Vec<Held>> = BTreeMap::new();
    for (stream, query, ends) in rows {
        sagas
            .entry(query.unwrap_or_default())
            .or_default()
            .push(Held {
                id: stream.trim_start_matches("saga/").to_owned(),
                ends: ends.unwrap_or_default(),
            });
    }
    Ok(sagas)
}

/// The recording service's effects by saga: saga id → (path, key) applied. Keys are
/// `<saga>:<step>:do|undo` (ADR 13); one that is not names no saga (`""`).
pub fn by_saga(effects: &BTreeMap<Effect, u64>) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for effect in effects.keys() {
        let saga = match effect.key.rsplitn(3, ':').collect::<Vec<_>>()[..] {
            [_, _, saga] => saga.to_owned(),
            _ => String::new(),
        };
        out.entry(saga)
            .or_default()
            .insert((effect.path.clone(), effect.key.clone()));
    }
    out
}

/// Counts one saga query's outcome into `counts`: `sagas` are the sagas its consensus started,
/// `effects` what the recording service applied, by saga.
pub fn count(
    counts: &mut Counts,
    ending: Ending,
    acked: bool,
    sagas: &[Held],
    effects: &BTreeMap<String, BTreeSet<(String, String)>>,
) {
    let [saga] = sagas else {
        match (sagas.len(), acked) {
            (0, true) => counts.lost += 1,
            (0, false) => counts.unknown += 1,
            _ => counts.duplicated += 1,
        }
        return;
    };
    let applied = effects.get(&saga.id).cloned().unwrap_or_default();
    let paths: BTreeSet<&String> = applied.iter().map(|(path, _)| path).collect();
    if saga.ends.len() > 1 || paths.len() < applied.len() {
        // Ended twice, or one step's effect applied under two keys.
        counts.duplicated += 1;
    } else if saga.ends == [ending.event_type()] && applied == ending.effects(&saga.id) {
        if acked {
            counts.ok += 1;
        } else {
            counts.recovered += 1;
        }
    } else {
        counts.lost += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effects(keys: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<(String, String)>> {
        let applied: BTreeMap<Effect, u64> = keys
            .iter()
            .map(|(path, key)| {
                let effect = Effect {
                    path: (*path).into(),
                    key: (*key).into(),
                };
                (effect, 1)
            })
            .collect();
        by_saga(&applied)
    }

    fn held(ends: &[&str]) -> Vec<Held> {
        vec![Held {
            id: "s1".into(),
            ends: ends.iter().map(|e| (*e).to_owned()).collect(),
        }]
    }

    fn outcome(ending: Ending, sagas: &[Held], keys: &[(&str, &str)]) -> Counts {
        let mut counts = Counts::default();
        count(&mut counts, ending, true, sagas, &effects(keys));
        counts
    }

    #[test]
    fn a_saga_is_ok_only_with_its_ending_and_each_effect_once() {
        let completed = held(&["quorum.tool.plan.completed"]);
        let both = [("do/reserve", "s1:0:do"), ("do/charge", "s1:1:do")];
        assert_eq!(outcome(Ending::Completed, &completed, &both).ok, 1);
        // A step missing, or the wrong ending: lost.
        assert_eq!(outcome(Ending::Completed, &completed, &both[..1]).lost, 1);
        let compensated = held(&["quorum.tool.plan.compensated"]);
        assert_eq!(outcome(Ending::Completed, &compensated, &both).lost, 1);
        let undone = [("do/reserve", "s1:0:do"), ("undo/reserve", "s1:0:undo")];
        assert_eq!(outcome(Ending::Compensated, &compensated, &undone).ok, 1);
        // One step applied under a second key: applied twice.
        let twice = [both[0], both[1], ("do/charge", "s1:1:do#2")];
        assert_eq!(outcome(Ending::Completed, &completed, &twice).duplicated, 1);
        // Never started though acknowledged: lost; two sagas for one query: duplicated.
        assert_eq!(outcome(Ending::Completed, &[], &[]).lost, 1);
        let two = [completed[0].clone(), completed[0].clone()];
        assert_eq!(outcome(Ending::Completed, &two, &both).duplicated, 1);
    }
}
