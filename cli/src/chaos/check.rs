//! The checker, as Jepsen's set checker reads a history: what each sender was told against what
//! Postgres and JetStream hold once the pipeline is quiet.
//!
//! For each event sent: told 202 (acked), it must be in Postgres exactly once and on JetStream
//! exactly once; otherwise (refused, or no answer) it may be absent, or present once
//! (`recovered`: a retry or the first attempt got through). Anything of the workload's tenant and
//! type that nobody sent is `unexpected`. Every query stored must be decided exactly once, and
//! every saga end as its plan says with each step's effect applied once (`sagas`). Each send is
//! counted under the last fault that struck before it.
//!
//! One loss is the fault's, not Quorum's: an event JetStream acknowledged on the ingest queue and
//! not yet taken into Postgres when nats-server's store was wiped. Its only copy was on the disk
//! the fault destroyed; it is counted apart (`lost_with_wiped_store`) and fails nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::faults::{Fault, FaultKind};
pub use super::held::Held;
use super::sagas::{self, Ending};
use super::workload::{NATS_SOURCE, Sent, Told, What};

/// What one fault's window (the sends after it, up to the next) came to.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counts {
    pub ok: u64,
    pub lost: u64,
    pub unknown: u64,
    pub recovered: u64,
    pub duplicated: u64,
}

#[derive(Debug, Serialize)]
pub struct Window {
    /// `before any fault`, or the fault that opened it.
    pub after: String,
    pub events: Counts,
    pub queries: Counts,
    pub sagas: Counts,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub windows: Vec<Window>,
    /// Events of the workload's type stored that no sender sent.
    pub unexpected: u64,
    /// Effects the recording service applied for no saga of the workload.
    pub unexpected_effects: u64,
    /// Saga queries whose experts did not agree (no plan, so no saga): nothing to check.
    pub sagas_not_started: u64,
    /// Queries decided without agreement (the deadline passed first, as it may while a fault
    /// holds the experts' answers back): decided, so counted ok, and told apart here.
    pub queries_not_agreed: u64,
    /// The first few of what was lost or doubled (`event <source> <id>`, `query <id>`,
    /// `saga of query <id>`), to start looking from.
    pub examples: Vec<String>,
    /// Of the events counted ok, those published over NATS.
    pub nats_events_ok: u64,
    /// Events acknowledged over NATS whose only copy was on the store a `nats-wipe` destroyed.
    pub lost_with_wiped_store: u64,
    /// Queries stored without exactly one consensus.
    pub undecided_queries: u64,
    pub multiply_decided_queries: u64,
    /// Links of the audit chain checked, and whether it verified.
    pub audit_links: u64,
    pub audit_ok: bool,
}

impl Verdict {
    /// No loss, no duplicate, nothing unexpected, every query decided once, the chain intact.
    pub fn passed(&self) -> bool {
        self.windows
            .iter()
            .all(|w| bad(&w.events) + bad(&w.queries) + bad(&w.sagas) == 0)
            && self.unexpected == 0
            && self.unexpected_effects == 0
            && self.undecided_queries == 0
            && self.multiply_decided_queries == 0
            && self.audit_ok
    }

    /// Events, queries and sagas over every window.
    pub fn totals(&self) -> [Counts; 3] {
        let mut totals: [Counts; 3] = Default::default();
        for w in &self.windows {
            add(&mut totals[0], &w.events);
            add(&mut totals[1], &w.queries);
            add(&mut totals[2], &w.sagas);
        }
        totals
    }
}

fn add(to: &mut Counts, c: &Counts) {
    to.ok += c.ok;
    to.lost += c.lost;
    to.unknown += c.unknown;
    to.recovered += c.recovered;
    to.duplicated += c.duplicated;
}

/// How long before a wipe an event acknowledged over NATS may still have been on the ingest
/// queue: past a stopped ingest (`faults::STOP_FOR`) and its redelivery.
const QUEUED_AT_A_WIPE: Duration = Duration::from_secs(60);

/// What counts against a run.
fn bad(c: &Counts) -> u64 {
    c.lost + c.duplicated
}

/// A query as the history tells it: sent twice, it is acked if either send was.
struct Query {
    at: Duration,
    acked: bool,
    id: Option<String>,
    saga: Option<Ending>,
}

/// An event identity: its source and id.
type Identity = (String, String);

/// The history collated: each event and each query once, with whether any send of it was acked.
struct Outcomes {
    /// When the event was first sent, and whether any send of it was acked.
    events: BTreeMap<Identity, (Duration, bool)>,
    queries: BTreeMap<String, Query>,
}

impl Outcomes {
    fn of(history: &[Sent]) -> Self {
        let mut events: BTreeMap<Identity, (Duration, bool)> = BTreeMap::new();
        let mut queries: BTreeMap<String, Query> = BTreeMap::new();
        for sent in history {
            let acked = sent.told == Told::Acked;
            match &sent.what {
                What::Event { source, id } => {
                    let e = events
                        .entry((source.clone(), id.clone()))
                        .or_insert((sent.at, false));
                    e.1 |= acked;
                }
                What::Query { key, id, saga } => {
                    let q = queries.entry(key.clone()).or_insert(Query {
                        at: sent.at,
                        acked: false,
                        id: None,
                        saga: *saga,
                    });
                    q.acked |= acked;
                    if id.is_some() {
                        q.id.clone_from(id);
                    }
                }
            }
        }
        Outcomes { events, queries }
    }
}

/// The counts being made: a window per fault, and what is told apart from them.
struct Tally<'a> {
    faults: &'a [Fault],
    windows: Vec<Window>,
    examples: Vec<String>,
    nats_events_ok: u64,
    lost_with_wiped_store: u64,
    sagas_not_started: u64,
}

impl<'a> Tally<'a> {
    fn new(faults: &'a [Fault]) -> Self {
        let windows = std::iter::once("before any fault".to_owned())
            .chain(faults.iter().map(ToString::to_string))
            .map(|after| Window {
                after,
                events: Counts::default(),
                queries: Counts::default(),
                sagas: Counts::default(),
            })
            .collect();
        Tally {
            faults,
            windows,
            examples: Vec::new(),
            nats_events_ok: 0,
            lost_with_wiped_store: 0,
            sagas_not_started: 0,
        }
    }

    /// The window a send at `at` counts in: that of the last fault before it.
    fn window(&mut self, at: Duration) -> &mut Window {
        let i = self.faults.iter().take_while(|f| f.at <= at).count();
        &mut self.windows[i]
    }

    fn example(&mut self, what: impl FnOnce() -> String) {
        if self.examples.len() < 20 {
            self.examples.push(what());
        }
    }

    fn events(&mut self, events: &BTreeMap<Identity, (Duration, bool)>, held: &Held) {
        // When nats-server's store was wiped. An event acknowledged over NATS can have been
        // waiting on the ingest queue at a wipe only if it was sent shortly before: one sent
        // earlier and missing was lost by something else, and counts as lost.
        let wipes: Vec<Duration> = self
            .faults
            .iter()
            .filter(|f| f.kind == FaultKind::NatsWipe)
            .map(|f| f.at)
            .collect();
        for (identity, &(at, acked)) in events {
            let stored = held.stored.get(identity).copied().unwrap_or(0);
            let published = held.published.get(identity).copied().unwrap_or(0);
            let over_nats = identity.0 == NATS_SOURCE;
            let wiped = over_nats && wipes.iter().any(|w| at < *w && *w - at <= QUEUED_AT_A_WIPE);
            let mut outcome = Counts::default();
            match (acked, stored, published) {
                (_, s, p) if s > 1 || p > 1 => outcome.duplicated += 1,
                (true, 1, 1) => {
                    outcome.ok += 1;
                    self.nats_events_ok += u64::from(over_nats);
                }
                (true, 0, 0) if wiped => self.lost_with_wiped_store += 1,
                (true, _, _) => outcome.lost += 1,
                (false, 0, 0) => outcome.unknown += 1,
                (false, 1, 1) => outcome.recovered += 1,
                // Stored but never published, or the other way: lost on the way.
                (false, _, _) => outcome.lost += 1,
            }
            add(&mut self.window(at).events, &outcome);
            if bad(&outcome) > 0 {
                self.example(|| format!("event {} {}", identity.0, identity.1));
            }
        }
    }

    fn queries(&mut self, queries: &BTreeMap<String, Query>, held: &Held) {
        for q in queries.values() {
            let decided = q.id.as_ref().and_then(|id| held.decisions.get(id)).copied();
            let id = q.id.clone().unwrap_or_default();
            let mut outcome = Counts::default();
            match (q.acked, decided) {
                (_, Some(n)) if n > 1 => outcome.duplicated += 1,
                (true, Some(1)) => outcome.ok += 1,
                (true, _) => outcome.lost += 1,
                (false, None) => outcome.unknown += 1,
                (false, Some(_)) => outcome.recovered += 1,
            }
            add(&mut self.window(q.at).queries, &outcome);
            if bad(&outcome) > 0 {
                self.example(|| format!("query {id}"));
            }
            let Some(ending) = q.saga else { continue };
            let started = held.sagas.get(&id).map_or(&[][..], Vec::as_slice);
            if started.is_empty() && decided.is_some() && !held.reached.contains(&id) {
                // Decided without agreement: no plan, so no saga to check.
                self.sagas_not_started += 1;
                continue;
            }
            let mut saga = Counts::default();
            sagas::count(&mut saga, ending, q.acked, started, &held.effects);
            add(&mut self.window(q.at).sagas, &saga);
            if bad(&saga) > 0 {
                self.example(|| format!("saga of query {id}"));
            }
        }
    }
}

/// Reads the history against what is held. `audit` is the chain's verification: links checked
/// and whether it held.
pub fn check(history: &[Sent], faults: &[Fault], held: &Held, audit: (u64, bool)) -> Verdict {
    let outcomes = Outcomes::of(history);
    let mut tally = Tally::new(faults);
    tally.events(&outcomes.events, held);
    tally.queries(&outcomes.queries, held);
    let ours: BTreeSet<&str> = held
        .sagas
        .values()
        .flatten()
        .map(|s| s.id.as_str())
        .collect();
    Verdict {
        windows: tally.windows,
        unexpected: held
            .stored
            .keys()
            .chain(held.published.keys())
            .filter(|k| !outcomes.events.contains_key(*k))
            .count() as u64,
        unexpected_effects: held
            .effects
            .iter()
            .filter(|(saga, _)| !ours.contains(saga.as_str()))
            .map(|(_, applied)| applied.len() as u64)
            .sum(),
        sagas_not_started: tally.sagas_not_started,
        queries_not_agreed: held
            .decisions
            .iter()
            .filter(|(id, n)| **n > 0 && !held.reached.contains(*id))
            .count() as u64,
        examples: tally.examples,
        nats_events_ok: tally.nats_events_ok,
        lost_with_wiped_store: tally.lost_with_wiped_store,
        undecided_queries: held.decisions.values().filter(|n| **n == 0).count() as u64,
        multiply_decided_queries: held.decisions.values().filter(|n| **n > 1).count() as u64,
        audit_links: audit.0,
        audit_ok: audit.1,
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<40} {:>16} {:>16} {:>16} {:>16} {:>16}",
            "after (events / queries / sagas)", "ok", "lost", "unknown", "recovered", "duplicated"
        )?;
        let row = |f: &mut std::fmt::Formatter<'_>, after: &str, c: [&Counts; 3]| {
            let cell = |n: fn(&Counts) -> u64| format!("{} / {} / {}", n(c[0]), n(c[1]), n(c[2]));
            writeln!(
                f,
                "{after:<40} {:>16} {:>16} {:>16} {:>16} {:>16}",
                cell(|c| c.ok),
                cell(|c| c.lost),
                cell(|c| c.unknown),
                cell(|c| c.recovered),
                cell(|c| c.duplicated)
            )
        };
        for w in &self.windows {
            row(f, &w.after, [&w.events, &w.queries, &w.sagas])?;
        }
        let [e, q, s] = self.totals();
        row(f, "total", [&e, &q, &s])?;
        writeln!(
            f,
            "events ok over NATS {}; unexpected events {}, saga effects {}; queries undecided {}, \
             decided more than once {}, decided without agreement {}; sagas not started (no \
             agreement) {}; lost with a wiped NATS store {}; audit chain {} ({} links)",
            self.nats_events_ok,
            self.unexpected,
            self.unexpected_effects,
            self.undecided_queries,
            self.multiply_decided_queries,
            self.queries_not_agreed,
            self.sagas_not_started,
            self.lost_with_wiped_store,
            if self.audit_ok { "verified" } else { "BROKEN" },
            self.audit_links
        )?;
        for example in &self.examples {
            writeln!(f, "  lost or doubled: {example}")?;
        }
        write!(
            f,
            "{}",
            if self.passed() {
                "PASS: nothing acknowledged was lost or doubled"
            } else {
                "FAIL"
            }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nats_event(id: &str, at_secs: u64) -> Sent {
        Sent {
            at: Duration::from_secs(at_secs),
            what: What::Event {
                source: NATS_SOURCE.into(),
                id: id.into(),
            },
            told: Told::Acked,
            retry_after: false,
            answered_in: None,
        }
    }

    /// Only an event sent shortly before a wipe can have had its only copy on the wiped store;
    /// one missing from long before was lost by something else.
    #[test]
    fn a_wipe_excuses_only_what_was_sent_just_before_it() {
        let wipe = Fault {
            at: Duration::from_secs(200),
            kind: FaultKind::NatsWipe,
            target: "nats-server (store wiped)".into(),
        };
        let held = Held {
            stored: BTreeMap::new(),
            published: BTreeMap::new(),
            decisions: BTreeMap::new(),
            reached: BTreeSet::new(),
            sagas: BTreeMap::new(),
            effects: BTreeMap::new(),
        };
        let history = [
            nats_event("just-before", 190),
            nats_event("long-before", 20),
        ];
        let verdict = check(&history, std::slice::from_ref(&wipe), &held, (0, true));
        assert_eq!(verdict.lost_with_wiped_store, 1);
        let [events, ..] = verdict.totals();
        assert_eq!(events.lost, 1);
        assert_eq!(
            verdict.examples,
            [format!("event {NATS_SOURCE} long-before")]
        );
        assert!(!verdict.passed());
    }
}
