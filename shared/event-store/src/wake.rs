//! When a commit-order reader (the relay, a projection) reads again after finding nothing.

use std::time::Duration;

/// How long to wait before reading again when a read found nothing. A notification means an
/// event committed, but a read may not see it yet: an older transaction (any write, not only an
/// append, and one whose commit sends no notification) can still hold the watermark below it, and
/// its notification may have been taken by a read that found only earlier events. So after any
/// activity a reader reads again soon, backing off from 1 ms to the poll interval, instead of
/// leaving a committed event for a whole poll interval.
pub struct Wake {
    poll: Duration,
    retry: Option<Duration>,
}

impl Wake {
    pub fn new(poll: Duration) -> Self {
        Self { poll, retry: None }
    }

    /// A notification came, or a read found events.
    pub fn active(&mut self) {
        self.retry = Some(Duration::from_millis(1));
    }

    /// How long to wait before the next read.
    pub fn wait(&mut self) -> Duration {
        match self.retry {
            Some(d) => {
                self.retry = Some(d * 2).filter(|n| *n < self.poll);
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
    fn backs_off_after_activity_up_to_the_poll_interval() {
        let mut w = Wake::new(Duration::from_millis(10));
        assert_eq!(
            w.wait(),
            Duration::from_millis(10),
            "idle: the poll interval"
        );
        w.active();
        let waits: Vec<u64> = (0..6).map(|_| w.wait().as_millis() as u64).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
    }
}
