//! Waits on a query's read-model row: `GET /v1/queries/{id}?wait=` and `/watch` learn of a change
//! from one `LISTEN quorum_queries` per process, fanned out in memory to every waiter of that
//! query, and each tenant may hold only so many waits at once (ADR 22).
//!
//! The `queries` projection notifies the ids of the rows it wrote, in the statement that writes
//! them, so a woken waiter reads the row as written. A notification can still be missed (the
//! listener's connection dropped, or the process was not yet listening), so a missed wake-up
//! must only delay an answer, never lose it:
//! - a waiter subscribes before it first reads the row, so a change after that read wakes it;
//! - every waiter reads again whenever the listener (re)subscribes, since changes made while
//!   nobody listened were notified to nobody;
//! - and every waiter reads again after `recheck` without any notification, for whatever else
//!   could go wrong (a notification Postgres could not deliver).
//!
//! A notification of decisions is read once for all the waiters it wakes (`listener`), so a
//! `?wait=` costs Postgres its first read alone, and none for a query submitted here that the
//! listener has seen no decision of (`fresh`). Whenever the listener's read did not happen (it
//! failed, or the wake is a re-subscription or the re-check), the waiter reads the row itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use quorum_domain::TenantId;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod fresh;
mod listener;

pub use fresh::Submitting;

/// The channel the `queries` projection notifies; the payload is the changed query ids, space
/// separated, each followed by `~` when its change is not a decision.
pub const CHANNEL: &str = "quorum_queries";

/// Every open wait of this process, by query.
#[derive(Clone)]
pub struct Waiters(Arc<Shared>);

struct Shared {
    state: Mutex<State>,
    max_per_tenant: usize,
    recheck: Duration,
    /// Cancelled at shutdown: waits end with what they have, so the server can stop.
    shutdown: CancellationToken,
}

#[derive(Default)]
struct State {
    /// Per waited-for query, what its waiters are told. Every notification marks the value
    /// changed, whether or not it is a decision. The entry lives while a waiter holds a receiver.
    queries: HashMap<String, watch::Sender<News>>,
    /// Open waits per tenant.
    tenants: HashMap<TenantId, usize>,
    /// Queries submitted here and not seen decided, whose waits need no first read.
    fresh: fresh::Fresh,
}

/// What the waiters of one query are told.
#[derive(Default)]
struct News {
    /// How many of its notifications may have been its decision: a change without the `~` mark,
    /// or a re-subscription, which may have missed one.
    decisions: u64,
    /// The row as the listener read it after the latest notification, for every waiter; `None`
    /// when it did not read it (not a decision, a re-subscription, a failed read).
    row: Option<Arc<Read>>,
}

/// A query's row as the listener read it for its waiters.
#[derive(Debug)]
pub struct Read {
    tenant: String,
    view: Value,
}

impl Read {
    /// The query as the API shows it, if `tenant` may see it.
    pub fn view_for(&self, tenant: &TenantId) -> Option<Value> {
        (self.tenant == tenant.as_str()).then(|| self.view.clone())
    }
}

/// A tenant holds as many waits as it may.
#[derive(Debug, thiserror::Error)]
#[error("the tenant has {0} waits open, as many as it may")]
pub struct TooManyWaits(pub usize);

/// One open wait on one query. Dropping it (the request answered, the client gone) frees the
/// tenant's room.
pub struct Waiter {
    waiters: Waiters,
    query: String,
    tenant: TenantId,
    /// Taken only by `drop`.
    changes: Option<watch::Receiver<News>>,
    /// The decisions counted when this waiter last looked.
    decisions_seen: u64,
}

impl Waiters {
    pub fn new(max_per_tenant: usize, recheck: Duration, shutdown: CancellationToken) -> Self {
        Self(Arc::new(Shared {
            state: Mutex::default(),
            max_per_tenant,
            recheck,
            shutdown,
        }))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement under the lock: a panic elsewhere
        // leaves nothing half-done.
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a wait of `tenant` on `query`, unless the tenant holds as many as it may. Call it
    /// before reading the row the first time, so no change after that read goes unnoticed.
    pub fn wait_for(&self, tenant: &TenantId, query: &str) -> Result<Waiter, TooManyWaits> {
        let mut state = self.state();
        let open = state.tenants.entry(tenant.clone()).or_default();
        if *open >= self.0.max_per_tenant {
            return Err(TooManyWaits(*open));
        }
        *open += 1;
        let changes = state
            .queries
            .entry(query.to_owned())
            .or_insert_with(|| watch::Sender::new(News::default()))
            .subscribe();
        let decisions_seen = changes.borrow().decisions;
        Ok(Waiter {
            waiters: self.clone(),
            query: query.to_owned(),
            tenant: tenant.clone(),
            changes: Some(changes),
            decisions_seen,
        })
    }

    /// Waits open now, across tenants.
    pub fn open(&self) -> usize {
        self.state().tenants.values().sum()
    }
}

impl Waiter {
    /// Returns when the query may have changed since this was last called (or since the wait was
    /// opened), when the re-check interval has passed, at `until`, or at shutdown; with the row,
    /// when the listener read it for a decision since. Otherwise the caller reads the row again.
    pub async fn changed(&mut self, until: Instant) -> Option<Arc<Read>> {
        self.woken(until, false).await
    }

    /// Like [`Waiter::changed`], but a change that is not the query's decision (an expert's
    /// result) does not end it: what `?wait=` needs, which answers only the decision. Each wake it
    /// skips is a read of the row saved.
    pub async fn decided(&mut self, until: Instant) -> Option<Arc<Read>> {
        self.woken(until, true).await
    }

    async fn woken(&mut self, until: Instant, decisions_only: bool) -> Option<Arc<Read>> {
        let shared = &self.waiters.0;
        let at = (Instant::now() + shared.recheck).min(until);
        let changes = self.changes.as_mut().expect("taken only by drop");
        let seen = self.decisions_seen;
        let woken = async {
            loop {
                // Err only if the sender is gone, which it is not while this receiver exists.
                if changes.changed().await.is_err() {
                    return;
                }
                if !decisions_only || changes.borrow_and_update().decisions != seen {
                    return;
                }
            }
        };
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep_until(at) => {}
            _ = shared.shutdown.cancelled() => {}
        }
        let news = changes.borrow();
        self.decisions_seen = news.decisions;
        // The row read after the latest notification; any later one would have taken it away.
        news.row.clone().filter(|_| news.decisions != seen)
    }

    /// The server is stopping: end the wait with what there is.
    pub fn stopping(&self) -> bool {
        self.waiters.0.shutdown.is_cancelled()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let mut state = self.waiters.state();
        // Dropped under the lock, so no wait on the same query can subscribe in between.
        drop(self.changes.take());
        if state
            .queries
            .get(&self.query)
            .is_some_and(|c| c.receiver_count() == 0)
        {
            state.queries.remove(&self.query);
        }
        if let Some(open) = state.tenants.get_mut(&self.tenant) {
            *open -= 1;
            if *open == 0 {
                state.tenants.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(name: &str) -> TenantId {
        TenantId::new(name).unwrap()
    }

    #[test]
    fn a_tenant_holds_at_most_its_share_and_a_closed_wait_frees_it() {
        let w = Waiters::new(2, Duration::from_secs(60), CancellationToken::new());
        let a = w.wait_for(&tenant("acme"), "q1").unwrap();
        let _b = w.wait_for(&tenant("acme"), "q2").unwrap();
        assert!(w.wait_for(&tenant("acme"), "q3").is_err());
        let _c = w.wait_for(&tenant("other"), "q3").expect("its own share");
        drop(a);
        let _d = w
            .wait_for(&tenant("acme"), "q3")
            .expect("the room a closed wait left");
        assert_eq!(w.open(), 3);
        assert_eq!(w.state().queries.len(), 2, "no waiter of q1 left");
    }

    #[tokio::test(start_paused = true)]
    async fn a_notification_wakes_every_waiter_of_its_query_and_only_them() {
        let w = Waiters::new(8, Duration::from_secs(3600), CancellationToken::new());
        let mut a = w.wait_for(&tenant("acme"), "q1").unwrap();
        let mut b = w.wait_for(&tenant("other"), "q1").unwrap();
        let mut c = w.wait_for(&tenant("acme"), "q2").unwrap();
        w.wake("q0 q1", &mut HashMap::new());
        let until = Instant::now() + Duration::from_secs(600);
        let started = Instant::now();
        a.changed(until).await;
        b.changed(until).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "woken at once");
        c.changed(until).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(600),
            "q2 was not woken"
        );
        // A wake-up that came before the wait looked is not lost.
        w.wake_all();
        let started = Instant::now();
        c.changed(started + Duration::from_secs(600)).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    /// `?wait=` reads the row again only for a decision: a change marked `~` (an expert's
    /// result) wakes `/watch`, not it; an unmarked one, or a re-subscription, wakes both.
    #[tokio::test(start_paused = true)]
    async fn a_wait_for_the_decision_sleeps_through_other_changes() {
        let w = Waiters::new(8, Duration::from_secs(3600), CancellationToken::new());
        let mut wait = w.wait_for(&tenant("acme"), "q1").unwrap();
        let mut watch = w.wait_for(&tenant("acme"), "q1").unwrap();
        w.wake("q1~ q2~", &mut HashMap::new());
        let until = Instant::now() + Duration::from_secs(600);
        let started = Instant::now();
        watch.changed(until).await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "a watch sees every change"
        );
        wait.decided(started + Duration::from_secs(10)).await;
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(10),
            "not woken by a result"
        );
        // The decision, notified before the wait looks again, is not lost.
        w.wake("q1", &mut HashMap::new());
        let started = Instant::now();
        wait.decided(started + Duration::from_secs(600)).await;
        assert_eq!(started.elapsed(), Duration::ZERO, "woken by the decision");
        // Nor one that may have been missed while nobody listened.
        w.wake_all();
        let started = Instant::now();
        wait.decided(started + Duration::from_secs(600)).await;
        assert_eq!(
            started.elapsed(),
            Duration::ZERO,
            "woken by a re-subscription"
        );
    }

    /// A decision's row, read once by the listener, is handed to every waiter it wakes; each sees
    /// it only if its tenant may. A wake without a row read after it (a change that is not a
    /// decision, a re-subscription, the re-check) hands none: the waiter reads its own.
    #[tokio::test(start_paused = true)]
    async fn the_listeners_read_of_a_decision_is_handed_to_its_waiters() {
        let w = Waiters::new(8, Duration::from_secs(5), CancellationToken::new());
        let mut mine = w.wait_for(&tenant("acme"), "q1").unwrap();
        let mut theirs = w.wait_for(&tenant("other"), "q1").unwrap();
        let _unrelated = w.wait_for(&tenant("acme"), "q3").unwrap();
        assert_eq!(
            w.waited_decisions("q1 q2 q3~"),
            ["q1"],
            "waited for, decided"
        );
        let read = || Read {
            tenant: "acme".into(),
            view: serde_json::json!({"status": "reached"}),
        };
        w.wake("q1 q3~", &mut HashMap::from([("q1".to_owned(), read())]));
        let until = Instant::now() + Duration::from_secs(600);
        let handed = mine.decided(until).await.expect("the listener's row");
        assert_eq!(
            handed.view_for(&tenant("acme")),
            Some(serde_json::json!({"status": "reached"}))
        );
        let handed = theirs.decided(until).await.expect("the same row");
        assert_eq!(handed.view_for(&tenant("other")), None, "not its tenant's");
        // Looked at once: the re-check that follows hands nothing.
        assert!(mine.decided(until).await.is_none());
        w.wake("q1~", &mut HashMap::new());
        assert!(mine.changed(until).await.is_none(), "not a decision");
        w.wake("q1", &mut HashMap::from([("q1".to_owned(), read())]));
        w.wake_all();
        assert!(
            mine.decided(until).await.is_none(),
            "a re-subscription after the read takes it away"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_notification_the_wait_rechecks_after_its_interval() {
        let w = Waiters::new(8, Duration::from_secs(5), CancellationToken::new());
        let mut a = w.wait_for(&tenant("acme"), "q1").unwrap();
        let started = Instant::now();
        a.changed(started + Duration::from_secs(600)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }
}
