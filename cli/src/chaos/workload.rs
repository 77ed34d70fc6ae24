//! The workload `quorum chaos` drives while faults strike: events with known ids from several
//! publishers over HTTP (one in ten sent a second time, as a client retrying would), and a query
//! every fifth tick, each with an `Idempotency-Key`. Every send is recorded with what its sender
//! was told, for the checker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

/// The event type the workload sends.
pub const EVENT_TYPE: &str = "chaos.event";
/// How many publishers (event sources) send.
const PUBLISHERS: u64 = 4;

/// What a sender was told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Told {
    /// 202: ingest said it is stored.
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
    /// A query by its idempotency key; the id ingest gave it once acked.
    Query {
        key: String,
        id: Option<String>,
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
    /// `http://<ingest>`.
    pub ingest: String,
    pub key: String,
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
            ingest: ingest.clone(),
            key: key.clone(),
            ledger: ledger.clone(),
            started,
            wait_answers,
        };
        let send = sender();
        if n.is_multiple_of(5) {
            sends.spawn(send.query(format!("chaos-q-{n}")));
        } else {
            let source = format!("/chaos/publisher-{}", n % PUBLISHERS);
            let id = format!("chaos-{n}");
            // One in ten twice: the same event, as a client that did not see the first answer.
            if n % 10 == 1 {
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
        let told = told(answer.map(|r| r.status().as_u16()));
        self.ledger.record(Sent {
            at,
            what: What::Event { source, id },
            told,
            retry_after,
            answered_in: None,
        });
    }

    async fn query(self, key: String) {
        let at = self.started.elapsed();
        let answer = self
            .http
            .post(format!("{}/v1/queries", self.ingest))
            .bearer_auth(&self.key)
            .header("Idempotency-Key", &key)
            .json(&json!({"question": "What is the capital of France?"}))
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
            what: What::Query { key, id },
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
