//! Quorum's metric names and the process-wide Prometheus recorder behind `/metrics`.
//!
//! Every metric Quorum records is named by a constant here, so a dashboard and the code agree on
//! one spelling. Labels are bounded (service, consumer, event type, expert, outcome): never an id,
//! a tenant-supplied string or an error message, since each distinct value is a new time series.

use std::sync::OnceLock;
use std::time::Duration;

use ::metrics::Unit;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter: messages a consumer settled. Labels: `consumer`, `outcome` (one of [`OUTCOMES`]).
pub const MESSAGES_TOTAL: &str = "quorum_messages_total";

/// Histogram, seconds: how long a handler took for one message. Labels: `consumer`, `outcome`.
pub const HANDLER_DURATION_SECONDS: &str = "quorum_handler_duration_seconds";

/// Gauge, seconds: how far the relay is behind, measured at each read: the age of the oldest
/// committed event not yet published, counting those a transaction still open holds behind the
/// watermark (docs/adr/0002); 0 when everything committed is published. Only the leader reports it.
pub const RELAY_LAG_SECONDS: &str = "quorum_relay_lag_seconds";

/// Counter: events the relay published to JetStream for the first time.
pub const RELAY_PUBLISHED_TOTAL: &str = "quorum_relay_published_total";

/// Counter: events the relay published again because the stream had lost them (see DESIGN §4).
pub const RELAY_REPUBLISHED_TOTAL: &str = "quorum_relay_republished_total";

/// Counter: messages a consumer gave up on and parked as dead letters. Label: `consumer`.
pub const DEAD_LETTERS_TOTAL: &str = "quorum_dead_letters_total";

/// Gauge, 0 or 1: whether this process leads a leader-elected loop. Label: `loop` (`relay`,
/// `audit chainer`, `dead-letter pump`).
pub const LEADER: &str = "quorum_leader";

/// Counter: terms of a leader-elected loop that ended in a panic (it then competes again). Label:
/// `loop`.
pub const LEADER_PANICS_TOTAL: &str = "quorum_leader_panics_total";

/// Label naming a leader-elected loop; bounded by the code.
pub const LABEL_LOOP: &str = "loop";

/// Counter: handler runs that panicked; each is a failed attempt (retried, then parked). Label:
/// `consumer`.
pub const HANDLER_PANICS_TOTAL: &str = "quorum_handler_panics_total";

/// Counter: handler runs that found the store unreachable; the message was kept and its handler
/// run again after a pause, not failed. Label: `consumer`.
pub const HANDLER_HOLDS_TOTAL: &str = "quorum_handler_holds_total";

/// Counter: vital tasks (a consumer, the relay, a projection) that ended before shutdown, which
/// fails `/livez` and `/readyz` so the process is restarted. Label: `task`.
pub const TASK_DEATHS_TOTAL: &str = "quorum_task_deaths_total";

/// Label naming a vital task; bounded by the code (`consensus consumer`, `relay`, …).
pub const LABEL_TASK: &str = "task";

/// Gauge: committed events the watermark holds back from the relay (an older transaction is still
/// open), counted at each read up to 100,000. Only the leader reports it.
pub const RELAY_WATERMARK_HELD_EVENTS: &str = "quorum_relay_watermark_held_events";

/// Gauge: events the relay holds back until their stream predecessor is published (docs/adr/0003).
pub const RELAY_HELD_EVENTS: &str = "quorum_relay_held_events";

/// Gauge: messages a durable consumer has not finished (not yet delivered, or delivered and not
/// acknowledged). Label: `consumer`. Every process running the consumer reports the same value.
pub const CONSUMER_PENDING_MESSAGES: &str = "quorum_consumer_pending_messages";

/// Gauge, seconds: how long ago the oldest message a durable consumer has not finished was stored
/// (0 when there is none). Label: `consumer`.
pub const CONSUMER_OLDEST_PENDING_SECONDS: &str = "quorum_consumer_oldest_pending_seconds";

/// Gauge: the process's database connections. Label: `state` (`in_use`, `idle`).
pub const DB_CONNECTIONS: &str = "quorum_db_connections";

/// Gauge: the most database connections the process's pool opens.
pub const DB_CONNECTIONS_MAX: &str = "quorum_db_connections_max";

/// Label of [`DB_CONNECTIONS`].
pub const LABEL_STATE: &str = "state";

/// Label naming the durable consumer; bounded by the services deployed.
pub const LABEL_CONSUMER: &str = "consumer";

/// Label naming how a message was settled; one of [`OUTCOMES`].
pub const LABEL_OUTCOME: &str = "outcome";

/// `outcome` value: handled and acked.
pub const OUTCOME_DONE: &str = "done";
/// `outcome` value: nakked with a delay, to be redelivered.
pub const OUTCOME_RETRY: &str = "retry";
/// `outcome` value: nakked with a delay to wait its turn, not a failure.
pub const OUTCOME_WAIT: &str = "wait";
/// `outcome` value: given back at shutdown while its store was unreachable.
pub const OUTCOME_UNAVAILABLE: &str = "unavailable";
/// `outcome` value: parked as a dead letter and terminated.
pub const OUTCOME_DEAD: &str = "dead";
/// `outcome` value: could not be decoded, so parked as a dead letter without reaching a handler.
pub const OUTCOME_UNDECODABLE: &str = "undecodable";
/// Every value the `outcome` label takes.
pub const OUTCOMES: [&str; 6] = [
    OUTCOME_DONE,
    OUTCOME_RETRY,
    OUTCOME_WAIT,
    OUTCOME_UNAVAILABLE,
    OUTCOME_DEAD,
    OUTCOME_UNDECODABLE,
];

/// Buckets of every `*_seconds` histogram. Handlers range from a millisecond (a fold over a few
/// events) to minutes (an expert asked with retries), so the buckets span both.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0,
];

/// How often histogram samples are folded into buckets between scrapes; bounds the memory that
/// unscraped samples take.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder on the first call and returns a handle to render
/// it; every later call returns a handle to the same recorder.
///
/// Every `*_seconds` histogram is rendered as a true Prometheus histogram with
/// [`SECONDS_BUCKETS`] (summaries cannot be aggregated across replicas). Works with or without a
/// Tokio runtime: upkeep runs on a small thread of its own.
///
/// If some other recorder was installed first (by a test harness, say), that one keeps receiving
/// the metrics: a warning is logged and the returned handle renders an empty recorder.
pub fn install_recorder() -> PrometheusHandle {
    HANDLE.get_or_init(install).clone()
}

fn install() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
        .expect("SECONDS_BUCKETS is not empty")
        .build_recorder();
    let handle = recorder.handle();
    if let Err(error) = ::metrics::set_global_recorder(recorder) {
        tracing::warn!(%error, "a metrics recorder was already installed; /metrics will be empty");
    }
    describe();

    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("quorum-metrics-upkeep".into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        // Scrapes still run upkeep themselves (see `admin`); only memory between scrapes grows.
        tracing::warn!(%error, "could not start the metrics upkeep thread");
    }
    handle
}

/// Registers the HELP text of Quorum's metrics, so a scrape explains them.
fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(MESSAGES_TOTAL, "Messages a consumer settled, by outcome.");
    describe_histogram!(
        HANDLER_DURATION_SECONDS,
        Unit::Seconds,
        "Time a handler took for one message."
    );
    describe_gauge!(
        RELAY_LAG_SECONDS,
        Unit::Seconds,
        "Age of the oldest committed event not yet published, those behind the watermark included."
    );
    describe_gauge!(
        RELAY_WATERMARK_HELD_EVENTS,
        "Committed events an older open transaction holds back from the relay."
    );
    describe_counter!(
        RELAY_PUBLISHED_TOTAL,
        "Events the relay published to JetStream."
    );
    describe_counter!(
        RELAY_REPUBLISHED_TOTAL,
        "Events the relay republished after the stream lost them."
    );
    describe_counter!(DEAD_LETTERS_TOTAL, "Messages parked as dead letters.");
    describe_gauge!(
        CONSUMER_PENDING_MESSAGES,
        "Messages a durable consumer has not finished: undelivered, or delivered and not acked."
    );
    describe_gauge!(
        CONSUMER_OLDEST_PENDING_SECONDS,
        Unit::Seconds,
        "Age of the oldest message a durable consumer has not finished."
    );
    describe_counter!(
        HANDLER_PANICS_TOTAL,
        "Handler runs that panicked (each a failed attempt)."
    );
    describe_counter!(
        HANDLER_HOLDS_TOTAL,
        "Handler runs that found the store unreachable (the message kept and run again, not failed)."
    );
    describe_counter!(
        TASK_DEATHS_TOTAL,
        "Vital tasks that ended before shutdown (the process is then not live)."
    );
    describe_gauge!(LEADER, "1 while this process leads the loop, else 0.");
    describe_counter!(
        LEADER_PANICS_TOTAL,
        "Terms of a leader-elected loop that ended in a panic; it competes again after each."
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_histograms_have_buckets() {
        let first = install_recorder();
        let second = install_recorder();

        ::metrics::counter!(MESSAGES_TOTAL, LABEL_CONSUMER => "test", LABEL_OUTCOME => OUTCOME_DONE)
            .increment(2);
        ::metrics::histogram!(HANDLER_DURATION_SECONDS, LABEL_CONSUMER => "test").record(0.02);
        // Histogram samples reach the buckets on upkeep; the admin server runs it on every scrape.
        second.run_upkeep();

        let text = first.render();
        assert!(
            text.contains(r#"quorum_messages_total{consumer="test",outcome="done"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"quorum_handler_duration_seconds_bucket{consumer="test",le="0.025"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("# HELP quorum_messages_total"), "{text}");
    }

    #[test]
    fn names_follow_prometheus_conventions() {
        let names = [
            MESSAGES_TOTAL,
            HANDLER_DURATION_SECONDS,
            RELAY_LAG_SECONDS,
            RELAY_WATERMARK_HELD_EVENTS,
            CONSUMER_PENDING_MESSAGES,
            CONSUMER_OLDEST_PENDING_SECONDS,
            DB_CONNECTIONS,
            DB_CONNECTIONS_MAX,
            RELAY_PUBLISHED_TOTAL,
            RELAY_REPUBLISHED_TOTAL,
            DEAD_LETTERS_TOTAL,
            LEADER,
            LEADER_PANICS_TOTAL,
            HANDLER_PANICS_TOTAL,
            HANDLER_HOLDS_TOTAL,
            TASK_DEATHS_TOTAL,
        ];
        for name in names {
            assert!(name.starts_with("quorum_"), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
        }
    }
}
