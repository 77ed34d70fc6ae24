//! The faults `quorum chaos` injects, and their schedule: reproducible from a seed, every kind
//! asked for at least once, spread over the run.

use std::time::Duration;

use serde::Serialize;

/// A kind of fault, as `--faults` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// SIGKILL of a service process, the relay leader's first; the supervisor starts it again.
    Kill,
    /// SIGSTOP of a service process for longer than `ack_wait`, then SIGCONT.
    Stop,
    /// SIGKILL of nats-server, and a start again on the same store.
    Nats,
    /// SIGKILL of nats-server, and a start again with its store wiped: the streams and consumers
    /// are gone, and the relay must refill the events stream from Postgres.
    NatsWipe,
    /// An immediate stop of Postgres (no checkpoint), and a start again.
    Postgres,
}

/// The services a process fault may strike, in the order `kill` takes them after the relay
/// leader.
pub const SERVICES: [&str; 6] = [
    "ingest",
    "expert-fanout",
    "consensus",
    "tool-exec",
    "audit",
    "dlq-replayer",
];

/// The target of the first `kill`: whichever ingest replica leads the relay when it strikes.
pub const RELAY_LEADER: &str = "relay leader";

/// How long a stopped service stays stopped: past the consumers' `ack_wait` (30 s), so that its
/// messages are delivered again elsewhere or after it resumes.
pub const STOP_FOR: Duration = Duration::from_secs(32);

/// One fault at its time in the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Fault {
    /// From the start of the workload.
    #[serde(rename = "at_seconds", serialize_with = "seconds")]
    pub at: Duration,
    pub kind: FaultKind,
    /// The service replica struck (`kill`, `stop`: `consensus`, `consensus#2`, or the relay
    /// leader), or the server.
    pub target: String,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            FaultKind::Kill => "SIGKILL",
            FaultKind::Stop => "SIGSTOP",
            FaultKind::Nats | FaultKind::NatsWipe => "SIGKILL",
            FaultKind::Postgres => "immediate stop",
        };
        write!(f, "{kind} {} at {}s", self.target, self.at.as_secs())
    }
}

/// The schedule for a run of `duration`: one fault every 20 s or so (at least one of each kind),
/// kinds in turn, each at a time drawn from `seed` within its slot, after a warm-up of a tenth of
/// the run. `kill` takes the relay leader, then the services in turn; `stop` the services in
/// turn from one the seed picks; of a service with `replicas`, the seed picks the replica.
pub fn schedule(kinds: &[FaultKind], duration: Duration, seed: u64, replicas: u32) -> Vec<Fault> {
    if kinds.is_empty() {
        return Vec::new();
    }
    let warm_up = duration / 10;
    let span = duration - warm_up;
    let slots = (span.as_secs() / 20).max(kinds.len() as u64);
    let slot = span / u32::try_from(slots).unwrap_or(u32::MAX);
    let mut random = SplitMix(seed);
    let mut killed = std::iter::once(RELAY_LEADER).chain(SERVICES).cycle();
    let mut stopped = SERVICES.iter().copied().cycle().skip((seed % 6) as usize);
    let replica = |service: &str, random: &mut SplitMix| match service {
        RELAY_LEADER => service.to_owned(),
        _ if replicas <= 1 => service.to_owned(),
        _ => match 1 + (random.next_f64() * f64::from(replicas)) as u32 {
            1 => service.to_owned(),
            n => format!("{service}#{n}"),
        },
    };
    (0..slots)
        .map(|i| {
            let kind = kinds[(i as usize) % kinds.len()];
            // Within the first half of its slot: what it disturbs has the rest to show it.
            let jitter = slot.mul_f64(random.next_f64() * 0.5);
            let target = match kind {
                FaultKind::Kill => replica(killed.next().expect("cycles"), &mut random),
                FaultKind::Stop => replica(stopped.next().expect("cycles"), &mut random),
                FaultKind::Nats => "nats-server".to_owned(),
                FaultKind::NatsWipe => "nats-server (store wiped)".to_owned(),
                FaultKind::Postgres => "postgres".to_owned(),
            };
            Fault {
                at: warm_up + slot * u32::try_from(i).unwrap_or(u32::MAX) + jitter,
                kind,
                target,
            }
        })
        .collect()
}

/// SplitMix64: a schedule reproducible from its seed needs a fixed generator, not a fast or
/// secure one.
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [FaultKind; 5] = [
        FaultKind::Kill,
        FaultKind::Stop,
        FaultKind::Nats,
        FaultKind::NatsWipe,
        FaultKind::Postgres,
    ];

    #[test]
    fn a_seed_gives_the_same_schedule() {
        let d = Duration::from_secs(600);
        assert_eq!(schedule(&ALL, d, 7, 2), schedule(&ALL, d, 7, 2));
        assert_ne!(schedule(&ALL, d, 7, 2), schedule(&ALL, d, 8, 2));
    }

    #[test]
    fn every_kind_strikes_in_order_within_the_run() {
        for secs in [30, 90, 600] {
            let d = Duration::from_secs(secs);
            let faults = schedule(&ALL, d, 1, 2);
            for kind in ALL {
                assert!(faults.iter().any(|f| f.kind == kind), "{kind:?} in {secs}s");
            }
            assert!(faults.windows(2).all(|w| w[0].at < w[1].at), "{faults:?}");
            assert!(faults.iter().all(|f| f.at < d), "{faults:?}");
        }
        // Ten minutes: every kind at least twice, the relay leader killed first.
        let faults = schedule(&ALL, Duration::from_secs(600), 1, 2);
        for kind in ALL {
            assert!(faults.iter().filter(|f| f.kind == kind).count() >= 2);
        }
        let first_kill = faults.iter().find(|f| f.kind == FaultKind::Kill).unwrap();
        assert_eq!(first_kill.target, RELAY_LEADER);
    }
}
