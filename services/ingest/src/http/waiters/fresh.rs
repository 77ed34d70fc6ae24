//! Queries this process submitted and has seen no decision of since: a `?wait=` on one of them
//! skips its first read of the row (ADR 39).
//!
//! The read answers a query decided before its wait began, whose notification no waiter was
//! there to take. The listener takes every notification while it is subscribed, so for a query
//! submitted here while it was, a decision this process has not seen is a decision not made yet,
//! and it will wake the wait. A query is recorded before its submission commits (so its decision
//! cannot come first), forgotten when a notification shows it decided, and every record is
//! forgotten when the listener loses its connection or subscribes again, since a notification
//! may then have gone to nobody. What is not recorded here is read as before. A decision
//! Postgres failed to deliver on a connection that still looks alive is found by the wait's
//! re-check: a delay, as for every wait after its first read.

use std::collections::{HashMap, VecDeque};

use quorum_domain::TenantId;

use super::Waiters;

/// Submissions remembered at most; the oldest are forgotten first (and then read as before).
const CAPACITY: usize = 65_536;
/// The `queries` projection leaves ids longer than this out of its notifications.
const NOTIFIED_ID_BYTES: usize = 200;

#[derive(Default)]
pub(super) struct Fresh {
    /// Whether the listener is subscribed: only then is every decision seen here.
    listening: bool,
    by_query: HashMap<String, Entry>,
    /// Insertion order, for forgetting the oldest; may name queries already forgotten.
    order: VecDeque<String>,
}

struct Entry {
    tenant: TenantId,
    /// The submission committed as a new query (not a duplicate of one submitted before).
    stored: bool,
}

impl Fresh {
    /// The listener subscribed (`true`) or lost its connection (`false`): either way what was
    /// remembered may have missed a notification.
    pub(super) fn listening(&mut self, listening: bool) {
        self.listening = listening;
        self.by_query.clear();
        self.order.clear();
    }

    /// A notification shows `query` decided.
    pub(super) fn decided(&mut self, query: &str) {
        self.by_query.remove(query);
    }

    fn record(&mut self, tenant: &TenantId, query: &str) -> bool {
        if !self.listening || query.len() > NOTIFIED_ID_BYTES || self.by_query.contains_key(query) {
            return false;
        }
        while self.order.len() >= CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.by_query.remove(&old);
            }
        }
        self.order.push_back(query.to_owned());
        let entry = Entry {
            tenant: tenant.clone(),
            stored: false,
        };
        self.by_query.insert(query.to_owned(), entry);
        true
    }
}

/// A submission under way, recorded before it commits. Say what storing it came to with
/// [`Submitting::stored`]; dropped without that (the store failed), it is forgotten.
pub struct Submitting {
    waiters: Waiters,
    /// `None` when nothing was recorded.
    query: Option<String>,
}

impl Submitting {
    /// The submission committed: as a new query, or as a `duplicate` of one submitted before
    /// (which may be decided already, so it is forgotten).
    pub fn stored(mut self, duplicate: bool) {
        let Some(query) = self.query.take() else {
            return;
        };
        let mut state = self.waiters.state();
        if duplicate {
            state.fresh.by_query.remove(&query);
        } else if let Some(entry) = state.fresh.by_query.get_mut(&query) {
            // Absent if the listener lost its connection meanwhile, or the decision came first.
            entry.stored = true;
        }
    }
}

impl Drop for Submitting {
    fn drop(&mut self) {
        if let Some(query) = self.query.take() {
            let mut state = self.waiters.state();
            if state.fresh.by_query.get(&query).is_some_and(|e| !e.stored) {
                state.fresh.by_query.remove(&query);
            }
        }
    }
}

impl Waiters {
    /// Records that `tenant` is submitting `query` here, before it is stored.
    pub fn submitting(&self, tenant: &TenantId, query: &str) -> Submitting {
        let recorded = self.state().fresh.record(tenant, query);
        Submitting {
            waiters: self.clone(),
            query: recorded.then(|| query.to_owned()),
        }
    }

    /// Whether `query` is one `tenant` submitted here that has not been decided: its decision,
    /// when it comes, wakes its waits. Ask after opening the wait, so a decision seen in between
    /// is not missed.
    pub fn undecided(&self, tenant: &TenantId, query: &str) -> bool {
        self.state()
            .fresh
            .by_query
            .get(query)
            .is_some_and(|e| e.stored && &e.tenant == tenant)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).unwrap()
    }

    fn listening() -> Waiters {
        let w = Waiters::new(8, Duration::from_secs(60), CancellationToken::new());
        w.state().fresh.listening(true);
        w
    }

    #[test]
    fn a_query_submitted_here_is_undecided_for_its_tenant_until_its_decision_is_notified() {
        let w = listening();
        let acme = tenant("acme");
        let submitting = w.submitting(&acme, "q1");
        assert!(!w.undecided(&acme, "q1"), "not before it is stored");
        submitting.stored(false);
        assert!(w.undecided(&acme, "q1"));
        assert!(!w.undecided(&tenant("other"), "q1"), "another tenant reads");
        assert!(!w.undecided(&acme, "q2"));
        w.wake("q1~", &mut HashMap::new());
        assert!(
            w.undecided(&acme, "q1"),
            "an expert's result decides nothing"
        );
        w.wake("q0 q1", &mut HashMap::new());
        assert!(!w.undecided(&acme, "q1"), "its decision was notified");
    }

    #[test]
    fn nothing_is_trusted_across_a_lost_or_new_subscription() {
        let w = Waiters::new(8, Duration::from_secs(60), CancellationToken::new());
        let acme = tenant("acme");
        w.submitting(&acme, "early").stored(false);
        assert!(
            !w.undecided(&acme, "early"),
            "not recorded while nobody listens"
        );
        w.state().fresh.listening(true);
        w.submitting(&acme, "q1").stored(false);
        w.wake_all();
        assert!(w.state().fresh.listening);
        assert!(
            !w.undecided(&acme, "q1"),
            "subscribed again: it may have missed one"
        );
        w.state().fresh.listening(true);
        w.submitting(&acme, "q2").stored(false);
        w.state().fresh.listening(false);
        assert!(!w.undecided(&acme, "q2"), "the connection was lost");
    }

    #[test]
    fn a_duplicate_a_failed_store_and_the_oldest_beyond_capacity_are_read() {
        let w = listening();
        let acme = tenant("acme");
        w.submitting(&acme, "dup").stored(true);
        assert!(
            !w.undecided(&acme, "dup"),
            "the query may be decided long since"
        );
        drop(w.submitting(&acme, "failed"));
        assert!(!w.undecided(&acme, "failed"));
        assert!(w.state().fresh.by_query.is_empty());
        let long = "x".repeat(NOTIFIED_ID_BYTES + 1);
        w.submitting(&acme, &long).stored(false);
        assert!(!w.undecided(&acme, &long), "its decision is never notified");
        for i in 0..=CAPACITY {
            w.submitting(&acme, &format!("q{i}")).stored(false);
        }
        assert!(!w.undecided(&acme, "q0"), "the oldest is forgotten");
        assert!(w.undecided(&acme, &format!("q{CAPACITY}")));
        assert_eq!(w.state().fresh.by_query.len(), CAPACITY);
    }
}
