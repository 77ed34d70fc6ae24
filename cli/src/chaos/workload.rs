//! The workload `quorum chaos` drives while faults strike: events with known ids from several
//! publishers, three over HTTP and one over NATS with its API key (one event in five sent a
//! second time, as a client retrying would), and a query every fifth tick, each with an
//! `Idempotency-Key`; one query in two asks for a saga (`sagas`). Every send is recorded with
//! what its sender was told, for the checker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::sagas::{self, Ending};

/// The event type the workload sends.
pub const EVENT_TYPE: &str = "chaos.event";
/// How many publishers (event sources) send; the last publishes over NATS.
const PUBLISHERS: u64 = 4;
/// The source of the events published over NATS.
pub const NATS_SOURCE: &str = "/chaos/nats-publisher";

/// What a sender was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Told {
    /// 202 (HTTP) or a JetStream ack (NATS): it is stored.
    Acked,
    /// Refused before anything was stored (429, 503, 4xx): it may be absent, or present once if
    /// a repeat of it was acked.
    Refused(u16),
    /// No answer (a reset, a timeout, a 5xx): absent, or present once.
    Unknown(String),
}

/// One send.
#[derive(Clone, Debug)]
pub struct Sent {
    /// When, from the start of the workload.
    pub at: Duration,
    pub what: What,
    pub told: Told,
    /// The answer carried `Retry-After` (as a refusal under load must).
    pub retry_after: bool,
    /// For a query waited for: from its submit until its answer was seen decided.
    pub answered_in: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum What {
    Event {
        source: String,
        id: String,
    },
    /// A query by its idempotency key; the id ingest gave it once acked, and the saga its
    /// experts' plan is to start, if it asks for one.
    Query {
        key: String,
        id: Option<String>,
        saga: Option<Ending>,
    },
}

/// Everything sent, shared by the senders.
#[derive(Clone, Default)]
pub struct Ledger(Arc<Mutex<Vec<Sent>>>);

impl Ledger {
    pub fn record(&self, sent: Sent) {
        self.0.lock().expect("not poisoned").push(sent);
    }

    pub fn entries(&self) -> Vec<Sent> {
        self.0.lock().expect("not poisoned").clone()
    }
}

/// What to send, where, and how fast.
#[derive(Clone)]
pub struct Workload {
    pub http: reqwest::Client,
    /// `http://<ingest>` of each ingest replica, sent to in turn.
    pub ingest: Vec<String>,
    pub key: String,
    /// The NATS publisher: a connection made with the API key (`None`: HTTP only).
    pub nats: Option<async_nats::jetstream::Context>,
    /// Sends a second.
    pub rate: u32,
    pub duration: Duration,
    /// Wait for each acknowledged query's answer (`?wait=`), recording how long it took.
    pub wait_answers: bool,
}

/// Sends at `rate` ticks a second for `duration`, without waiting for one answer before the next
/// send (a slow answer during a fault must not slow the offered load).
pub async fn drive(workload: Workload, ledger: Ledger) {
    let Workload {
        http,
        ingest,
        key,
        nats,
        rate,
        duration,
        wait_answers,
    } = workload;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sends = tokio::task::JoinSet::new();
    let mut n: u64 = 0;
    while started.elapsed() < duration {
        tick.tick().await;
        n += 1;
        let sender = || Send {
            http: http.clone(),
            ingest: ingest[(n as usize) % ingest.len()].clone(),
            key: key.clone(),
            nats: nats.clone(),
            ledger: ledger.clone(),
            started,
            wait_answers,
        };
        let send = sender();
        if n.is_multiple_of(5) {
            let saga = match n % 20 {
                0 => Some(Ending::Completed),
                10 => Some(Ending::Compensated),
                _ => None,
            };
            sends.spawn(send.query(format!("chaos-q-{n}"), n, saga));
        } else {
            let source = match n % PUBLISHERS {
                0 if nats.is_some() => NATS_SOURCE.to_owned(),
                p => format!("/chaos/publisher-{p}"),
            };
            let id = format!("chaos-{n}");
            // One in five twice (every publisher's turn comes): the same event, as a client that
            // did not see the first answer.
            if n % 10 == 1 || n % 10 == 4 {
                let again = sender();
                let (source, id) = (source.clone(), id.clone());
                sends.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    again.event(source, id).await;
                });
            }
            sends.spawn(send.event(source, id));
        }
        // Reap what finished, so the set holds only sends in flight.
        while sends.try_join_next().is_some() {}
    }
    while sends.join_next().await.is_some() {}
}

struct Send {
    http: reqwest::Client,
    ingest: String,
    key: String,
    nats: Option<async_nats::jetstream::Context>,
    ledger: Ledger,
    started: Instant,
    wait_answers: bool,
}

impl Send {
    async fn event(self, source: String, id: String) {
        let at = self.started.elapsed();
        let body = json!({
            "specversion": "1.0",
            "id": id,
            "source": source,
            "type": EVENT_TYPE,
            "datacontenttype": "application/json",
            "data": {"sent_at_ms": at.as_millis() as u64},
        });
        let (told, retry_after) = match (&self.nats, source == NATS_SOURCE) {
            (Some(js), true) => (publish(js, body).await, false),
            _ => {
                let answer = self
                    .http
                    .post(format!("{}/v1/events", self.ingest))
                    .bearer_auth(&self.key)
                    .header("content-type", "application/cloudevents+json")
                    .body(body.to_string())
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let retry_after = answer.as_ref().is_ok_and(has_retry_after);
                (told(answer.map(|r| r.status().as_u16())), retry_after)
            }
        };
        self.ledger.record(Sent {
            at,
            what: What::Event { source, id },
            told,
            retry_after,
            answered_in: None,
        });
    }

    async fn query(self, key: String, n: u64, saga: Option<Ending>) {
        let at = self.started.elapsed();
        let query = match saga {
            Some(ending) => {
                json!({"question": ending.question(n), "tool_policy": sagas::tool_policy()})
            }
            None => json!({"question": "What is the capital of France?"}),
        };
        let answer = self
            .http
            .post(format!("{}/v1/queries", self.ingest))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", &key)
            .json(&query)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let retry_after = answer.as_ref().is_ok_and(has_retry_after);
        let (told, id) = match answer {
            Ok(r) if r.status().as_u16() == 202 => {
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                let id = body["query_id"].as_str().map(str::to_owned);
                (Told::Acked, id)
            }
            other => (told(other.map(|r| r.status().as_u16())), None),
        };
        let answered_in = match (&id, self.wait_answers) {
            (Some(id), true) => self.answer(id).await.then(|| self.started.elapsed() - at),
            _ => None,
        };
        self.ledger.record(Sent {
            at,
            what: What::Query { key, id, saga },
            told,
            retry_after,
            answered_in,
        });
    }

    /// Whether the query was seen decided within 30 s.
    async fn answer(&self, id: &str) -> bool {
        let view: Option<serde_json::Value> = async {
            self.http
                .get(format!("{}/v1/queries/{id}?wait=30s", self.ingest))
                .bearer_auth(&self.key)
                .timeout(Duration::from_secs(35))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()
        }
        .await;
        view.is_some_and(|v| v["status"] != "pending" && !v["status"].is_null())
    }
}

/// Publishes an event to the tenant's ingest subject and waits for JetStream's ack, which is the
/// NATS publisher's 202.
async fn publish(js: &async_nats::jetstream::Context, body: serde_json::Value) -> Told {
    let tenant = quorum_domain::TenantId::new(super::TENANT).expect("a valid tenant");
    let subject = quorum_bus::subjects::ingest(&tenant, EVENT_TYPE);
    let acked = async {
        js.publish(subject, body.to_string().into())
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(10), acked).await {
        Ok(Ok(_)) => Told::Acked,
        Ok(Err(e)) => Told::Unknown(e),
        Err(_) => Told::Unknown("no JetStream ack within 10 s".into()),
    }
}

fn has_retry_after(r: &reqwest::Response) -> bool {
    r.headers().contains_key(reqwest::header::RETRY_AFTER)
}

fn told(answer: Result<u16, reqwest::Error>) -> Told {
    match answer {
        Ok(202) => Told::Acked,
        // A 5xx may come after the commit (a lost connection mid-way): stored or not, unknown.
        Ok(status) if status >= 500 => Told::Unknown(format!("HTTP {status}")),
        Ok(status) => Told::Refused(status),
        Err(e) => Told::Unknown(e.to_string()),
    }
}
