//! When a commit-order reader (the relay, a projection) reads again.

use std::time::Duration;

use futures::FutureExt;
use sqlx::postgres::PgListener;
use tokio::time::Instant;

/// After a notification, a reader reads no sooner than this after its previous read began. Under
/// load commits come faster than reads, and one read a moment later takes several of them; when
/// commits are sparse the previous read is long past and nothing waits.
const PACE: Duration = Duration::from_millis(2);

/// How long a reader waits before its next read, given what its last read saw.
///
/// A notification means an event committed: the reader reads at once. A read that was not full
/// says whether committed events are held behind the watermark ([`crate::Committed::held`]): an
/// older transaction still runs, and it may end without notifying (any write holds the watermark,
/// not only an append). Then the reader reads again soon, backing off from 1 ms to the poll
/// interval while its reads make no progress (the same transaction keeps it waiting); a read that
/// took events starts the backoff again at 1 ms, since under steady load some transaction is
/// nearly always running and every read sees events held by a different one. Otherwise it has
/// read everything committed, and waits for the next notification, polling only in case the
/// listener was lost.
pub struct Wake {
    poll: Duration,
    retry: Option<Duration>,
    last_read: Option<Instant>,
}

impl Wake {
    pub fn new(poll: Duration) -> Self {
        Self {
            poll,
            retry: None,
            last_read: None,
        }
    }

    /// A read begins now.
    pub fn reading(&mut self) {
        self.last_read = Some(Instant::now());
    }

    /// A notification came on `listener`: waits what is left of the pace, then takes every
    /// notification that has arrived meanwhile, so the one read that follows answers them all.
    pub async fn notified(&self, listener: &mut PgListener) {
        tokio::time::sleep(self.pace()).await;
        while let Some(Ok(Some(_))) = listener.try_recv().now_or_never() {}
    }

    /// How long a notified reader waits before it reads: what is left of [`PACE`] since its
    /// previous read began.
    pub fn pace(&self) -> Duration {
        self.last_read.map_or(Duration::ZERO, |at| {
            (at + PACE).saturating_duration_since(Instant::now())
        })
    }

    /// The last read saw events held behind the watermark; `progressed` when it took events all
    /// the same.
    pub fn held(&mut self, progressed: bool) {
        if progressed {
            self.retry = Some(Duration::from_millis(1));
        } else {
            self.retry.get_or_insert(Duration::from_millis(1));
        }
    }

    /// The last read took everything committed.
    pub fn caught_up(&mut self) {
        self.retry = None;
    }

    /// How long to wait before the next read, unless a notification comes first.
    pub fn wait(&mut self) -> Duration {
        match self.retry {
            Some(d) => {
                self.retry = Some((d * 2).min(self.poll));
                d
            }
            None => self.poll,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_while_held_and_waits_for_a_notification_once_caught_up() {
        let mut w = Wake::new(Duration::from_millis(10));
        assert_eq!(
            w.wait(),
            Duration::from_millis(10),
            "idle: the poll interval"
        );
        w.held(false);
        let mut waits = vec![];
        for _ in 0..6 {
            waits.push(w.wait().as_millis() as u64);
            w.held(false); // still held, nothing read: the backoff goes on
        }
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        w.held(true);
        assert_eq!(
            w.wait(),
            Duration::from_millis(1),
            "a read that took events reads again soon, however long the backoff had grown"
        );
        w.caught_up();
        assert_eq!(w.wait(), Duration::from_millis(10), "caught up: poll");
        w.held(false);
        assert_eq!(w.wait(), Duration::from_millis(1), "held anew: soon");
    }

    #[tokio::test(start_paused = true)]
    async fn a_notified_read_waits_only_for_what_is_left_of_the_pace() {
        let mut w = Wake::new(Duration::from_millis(10));
        assert_eq!(w.pace(), Duration::ZERO, "no read yet: read at once");
        w.reading();
        assert_eq!(w.pace(), PACE);
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(w.pace(), PACE - Duration::from_millis(1));
        tokio::time::advance(PACE).await;
        assert_eq!(
            w.pace(),
            Duration::ZERO,
            "long after the last read: at once"
        );
    }
}
