//! When a commit-order reader (the relay, a projection) reads again.

use std::time::Duration;

/// How long a reader waits before its next read, given what its last read saw.
///
/// A notification means an event committed: the reader reads at once. A read that was not full
/// says whether committed events are held behind the watermark ([`crate::Committed::held`]): an
/// older transaction still runs, and it may end without notifying (any write holds the watermark,
/// not only an append). Then the reader reads again soon, backing off from 1 ms to the poll
/// interval while the same transaction keeps it waiting. Otherwise it has read everything
/// committed, and waits for the next notification, polling only in case the listener was lost.
pub struct Wake {
    poll: Duration,
    retry: Option<Duration>,
}

impl Wake {
    pub fn new(poll: Duration) -> Self {
        Self { poll, retry: None }
    }

    /// The last read saw events held behind the watermark.
    pub fn held(&mut self) {
        self.retry.get_or_insert(Duration::from_millis(1));
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
        w.held();
        let mut waits = vec![];
        for _ in 0..6 {
            waits.push(w.wait().as_millis() as u64);
            w.held(); // still held: the backoff goes on
        }
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
        w.caught_up();
        assert_eq!(w.wait(), Duration::from_millis(10), "caught up: poll");
        w.held();
        assert_eq!(w.wait(), Duration::from_millis(1), "held anew: soon");
    }
}
