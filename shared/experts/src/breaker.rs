//! A circuit breaker per expert: after `failures` failures in a row it opens, and the expert is not
//! asked (its result is `circuit_open` at once) until `cool_down` has passed; then one call is let
//! through (half-open), which closes the breaker if it succeeds and opens it again if it fails.
//! Each change of state is logged and counted.

use std::sync::Mutex;
use std::time::Duration;

use quorum_config::duration;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// Counter: breaker state changes. Labels: `expert`, `state` (the new one).
pub const TRANSITIONS_TOTAL: &str = "quorum_breaker_transitions_total";

/// Gauge: each expert's breaker, 0 closed, 1 half-open, 2 open, as this process sees it. Label:
/// `expert`.
pub const STATE: &str = "quorum_breaker_state";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker.
    pub failures: u32,
    /// How long it stays open before one call is tried.
    #[serde(with = "duration")]
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One call is being tried.
    HalfOpen,
}

pub struct Breaker {
    expert: String,
    config: BreakerConfig,
    state: Mutex<State>,
}

/// The breaker is open: the call was not made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Open;

impl Breaker {
    pub fn new(expert: &str, config: BreakerConfig) -> Self {
        metrics::gauge!(STATE, "expert" => expert.to_owned()).set(0.0);
        Self {
            expert: expert.to_owned(),
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a call may go ahead now. Past the cool-down, the first caller gets the half-open
    /// trial and the others are refused until it reports.
    pub fn acquire(&self) -> Result<(), Open> {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if Instant::now() >= until => {
                self.change(&mut state, State::HalfOpen);
                Ok(())
            }
            State::Open { .. } | State::HalfOpen => Err(Open),
        }
    }

    /// Reports how an allowed call went.
    pub fn record(&self, success: bool) {
        let mut state = self.lock();
        let next = match (*state, success) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.config.failures => {
                State::Closed {
                    failures: failures + 1,
                }
            }
            (_, false) => State::Open {
                until: Instant::now() + self.config.cool_down,
            },
        };
        self.change(&mut state, next);
    }

    /// `closed`, `open` or `half_open`.
    pub fn state(&self) -> &'static str {
        name(*self.lock())
    }

    /// Failures in a row while closed (0 otherwise).
    pub fn failures(&self) -> u32 {
        match *self.lock() {
            State::Closed { failures } => failures,
            _ => 0,
        }
    }

    pub fn expert(&self) -> &str {
        &self.expert
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn change(&self, state: &mut State, next: State) {
        let (from, to) = (name(*state), name(next));
        *state = next;
        if from != to {
            tracing::warn!(expert = %self.expert, from, to, "circuit breaker changed state");
            metrics::counter!(TRANSITIONS_TOTAL, "expert" => self.expert.clone(), "state" => to)
                .increment(1);
            let level = match next {
                State::Closed { .. } => 0.0,
                State::HalfOpen => 1.0,
                State::Open { .. } => 2.0,
            };
            metrics::gauge!(STATE, "expert" => self.expert.clone()).set(level);
        }
    }
}

fn name(state: State) -> &'static str {
    match state {
        State::Closed { .. } => "closed",
        State::Open { .. } => "open",
        State::HalfOpen => "half_open",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(
            "e",
            BreakerConfig {
                failures: 3,
                cool_down: Duration::from_secs(10),
            },
        )
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_failures_fails_fast_half_opens_and_closes_on_success() {
        let b = breaker();
        for _ in 0..2 {
            b.acquire().unwrap();
            b.record(false);
        }
        assert_eq!(b.state(), "closed");
        b.acquire().unwrap();
        b.record(false);
        assert_eq!(b.state(), "open");
        assert_eq!(b.acquire(), Err(Open), "fails fast while open");
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(b.acquire(), Err(Open));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(b.acquire(), Ok(()), "one trial after the cool-down");
        assert_eq!(b.state(), "half_open");
        assert_eq!(b.acquire(), Err(Open), "only one trial at a time");
        b.record(true);
        assert_eq!(b.state(), "closed");
        assert_eq!(b.acquire(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_trial_opens_it_again_and_a_success_resets_the_count() {
        let b = breaker();
        for _ in 0..3 {
            b.record(false);
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        b.acquire().unwrap();
        b.record(false);
        assert_eq!(b.state(), "open");
        assert_eq!(b.acquire(), Err(Open));

        let b = breaker();
        b.record(false);
        b.record(false);
        b.record(true);
        b.record(false);
        b.record(false);
        assert_eq!(b.state(), "closed", "failures count in a row only");
    }
}
