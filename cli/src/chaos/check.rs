//! The checker, as Jepsen's set checker reads a history: what each sender was told against what
//! Postgres and JetStream hold once the pipeline is quiet.
//!
//! For each event sent: told 202 (acked), it must be in Postgres exactly once and on JetStream
//! exactly once; otherwise (refused, or no answer) it may be absent, or present once
//! (`recovered`: a retry or the first attempt got through). Anything of the workload's tenant and
//! type that nobody sent is `unexpected`. Every query stored must be decided exactly once. Each
//! send is counted under the last fault that struck before it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use quorum_domain::TenantId;
use serde::Serialize;
use sqlx::PgPool;

use super::faults::Fault;
use super::workload::{EVENT_TYPE, Sent, Told, What};

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
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub windows: Vec<Window>,
    /// Events of the workload's type stored that no sender sent.
    pub unexpected: u64,
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
        let bad = |c: &Counts| c.lost + c.duplicated;
        self.windows
            .iter()
            .all(|w| bad(&w.events) + bad(&w.queries) == 0)
            && self.unexpected == 0
            && self.undecided_queries == 0
            && self.multiply_decided_queries == 0
            && self.audit_ok
    }

    pub fn totals(&self) -> (Counts, Counts) {
        let mut events = Counts::default();
        let mut queries = Counts::default();
        for w in &self.windows {
            add(&mut events, &w.events);
            add(&mut queries, &w.queries);
        }
        (events, queries)
    }
}

fn add(to: &mut Counts, c: &Counts) {
    to.ok += c.ok;
    to.lost += c.lost;
    to.unknown += c.unknown;
    to.recovered += c.recovered;
    to.duplicated += c.duplicated;
}

/// What the store and the bus hold of `tenant`'s workload.
pub struct Held {
    /// (source, id) → rows in Postgres.
    pub stored: BTreeMap<(String, String), u64>,
    /// (source, id) → messages on JetStream.
    pub published: BTreeMap<(String, String), u64>,
    /// Query id → consensus events.
    pub decisions: BTreeMap<String, u64>,
}

impl Held {
    pub async fn read(
        pool: &PgPool,
        js: &jetstream::Context,
        tenant: &TenantId,
    ) -> anyhow::Result<Self> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT source, event_id, count(*) FROM events WHERE tenant = $1 AND type = $2
             GROUP BY source, event_id",
        )
        .bind(tenant.as_str())
        .bind(EVENT_TYPE)
        .fetch_all(pool)
        .await?;
        let stored = rows
            .into_iter()
            .map(|(s, i, n)| ((s, i), n as u64))
            .collect();
        // Every query stream stored, with how many consensus events it holds.
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT stream_id,
                    count(*) FILTER (WHERE type IN ('quorum.consensus.reached', 'quorum.consensus.failed'))
             FROM events WHERE tenant = $1 AND stream_id LIKE 'query/%' GROUP BY stream_id",
        )
        .bind(tenant.as_str())
        .fetch_all(pool)
        .await?;
        let decisions = rows
            .into_iter()
            .map(|(s, n)| {
                let id = s.strip_prefix("query/").unwrap_or(&s).to_owned();
                (id, n as u64)
            })
            .collect();
        Ok(Self {
            stored,
            published: published(js, tenant).await?,
            decisions,
        })
    }
}

/// (source, id) → messages of the workload's type for `tenant` on the events stream, read from
/// the start with an ephemeral consumer.
async fn published(
    js: &jetstream::Context,
    tenant: &TenantId,
) -> anyhow::Result<BTreeMap<(String, String), u64>> {
    let stream = js.get_stream(quorum_bus::EVENTS_STREAM).await?;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: consumer::DeliverPolicy::All,
            ack_policy: consumer::AckPolicy::None,
            filter_subject: quorum_bus::subjects::event(tenant, EVENT_TYPE),
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let mut counts = BTreeMap::new();
    let mut messages = consumer
        .stream()
        .expires(Duration::from_secs(2))
        .messages()
        .await?;
    // Until a fetch finds nothing more.
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(3), messages.next()).await {
        let msg = msg?;
        let event = quorum_bus::decode(msg.headers.as_ref(), &msg.payload)?;
        *counts.entry((event.source, event.id)).or_insert(0) += 1;
        if msg.info().is_ok_and(|i| i.pending == 0) {
            break;
        }
    }
    Ok(counts)
}

/// Reads the history against what is held. `audit` is the chain's verification: links checked
/// and whether it held.
pub fn check(history: &[Sent], faults: &[Fault], held: &Held, audit: (u64, bool)) -> Verdict {
    let mut windows: Vec<Window> = std::iter::once("before any fault".to_owned())
        .chain(faults.iter().map(ToString::to_string))
        .map(|after| Window {
            after,
            events: Counts::default(),
            queries: Counts::default(),
        })
        .collect();
    let window_of = |at: Duration| faults.iter().take_while(|f| f.at <= at).count();
    // An event sent twice is one outcome: acked if either send was.
    let mut events: BTreeMap<(String, String), (Duration, bool)> = BTreeMap::new();
    let mut queries: BTreeMap<String, (Duration, bool, Option<String>)> = BTreeMap::new();
    for sent in history {
        let acked = sent.told == Told::Acked;
        match &sent.what {
            What::Event { source, id } => {
                let e = events
                    .entry((source.clone(), id.clone()))
                    .or_insert((sent.at, false));
                e.1 |= acked;
            }
            What::Query { key, id } => {
                let q = queries.entry(key.clone()).or_insert((sent.at, false, None));
                q.1 |= acked;
                if id.is_some() {
                    q.2.clone_from(id);
                }
            }
        }
    }
    for (identity, (at, acked)) in &events {
        let stored = held.stored.get(identity).copied().unwrap_or(0);
        let published = held.published.get(identity).copied().unwrap_or(0);
        let outcome = &mut windows[window_of(*at)].events;
        match (acked, stored, published) {
            (_, s, p) if s > 1 || p > 1 => outcome.duplicated += 1,
            (true, 1, 1) => outcome.ok += 1,
            (true, _, _) => outcome.lost += 1,
            (false, 0, 0) => outcome.unknown += 1,
            (false, 1, 1) => outcome.recovered += 1,
            // Stored but never published, or the other way: lost on the way.
            (false, _, _) => outcome.lost += 1,
        }
    }
    for (at, acked, id) in queries.values() {
        let outcome = &mut windows[window_of(*at)].queries;
        let decided = id.as_ref().and_then(|id| held.decisions.get(id)).copied();
        match (acked, decided) {
            (_, Some(n)) if n > 1 => outcome.duplicated += 1,
            (true, Some(1)) => outcome.ok += 1,
            (true, _) => outcome.lost += 1,
            (false, None) => outcome.unknown += 1,
            (false, Some(_)) => outcome.recovered += 1,
        }
    }
    let sent: BTreeSet<&(String, String)> = events.keys().collect();
    Verdict {
        windows,
        unexpected: held
            .stored
            .keys()
            .chain(held.published.keys())
            .filter(|k| !sent.contains(k))
            .count() as u64,
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
            "{:<42} {:>14} {:>14} {:>14} {:>14} {:>14}",
            "after (events / queries)", "ok", "lost", "unknown", "recovered", "duplicated"
        )?;
        let row = |f: &mut std::fmt::Formatter<'_>, after: &str, e: &Counts, q: &Counts| {
            let cell = |e: u64, q: u64| format!("{e} / {q}");
            writeln!(
                f,
                "{after:<42} {:>14} {:>14} {:>14} {:>14} {:>14}",
                cell(e.ok, q.ok),
                cell(e.lost, q.lost),
                cell(e.unknown, q.unknown),
                cell(e.recovered, q.recovered),
                cell(e.duplicated, q.duplicated)
            )
        };
        for w in &self.windows {
            row(f, &w.after, &w.events, &w.queries)?;
        }
        let (e, q) = self.totals();
        row(f, "total", &e, &q)?;
        writeln!(
            f,
            "unexpected events {}; queries undecided {}, decided more than once {}; audit chain {} ({} links)",
            self.unexpected,
            self.undecided_queries,
            self.multiply_decided_queries,
            if self.audit_ok { "verified" } else { "BROKEN" },
            self.audit_links
        )?;
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
