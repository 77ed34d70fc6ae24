//! The third party the chaos sagas' steps call: an HTTP service that applies each effect once per
//! `Idempotency-Key`, as a tool that honours the key does (ADR 13), and remembers every call, so
//! that the checker can tell an effect applied twice (two keys for one step) from a call repeated
//! after a crash (one key, one effect).
//!
//! `POST /do/<step>` and `POST /undo/<step>` apply; `POST /refuse` answers 400, a final failure
//! that makes the saga compensate. It runs inside `quorum chaos`, outside the stack, so that no
//! fault strikes it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};

/// One effect: what was applied (`do/reserve`, `undo/reserve`), under which key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Effect {
    pub path: String,
    pub key: String,
}

/// Every effect applied, with how many calls asked for it (more than one: a retry with the same
/// key, answered without applying it again).
#[derive(Clone, Default)]
pub struct Effects(Arc<Mutex<BTreeMap<Effect, u64>>>);

impl Effects {
    pub fn snapshot(&self) -> BTreeMap<Effect, u64> {
        self.0.lock().expect("not poisoned").clone()
    }

    fn record(&self, path: String, key: String) {
        *self
            .0
            .lock()
            .expect("not poisoned")
            .entry(Effect { path, key })
            .or_insert(0) += 1;
    }
}

/// Starts the service on a free loopback port; it runs until the process ends.
pub async fn start() -> anyhow::Result<(SocketAddr, Effects)> {
    let effects = Effects::default();
    let app = axum::Router::new()
        .route("/{side}/{step}", axum::routing::post(apply))
        .route("/refuse", axum::routing::post(refuse))
        .with_state(effects.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((addr, effects))
}

async fn apply(
    State(effects): State<Effects>,
    Path((side, step)): Path<(String, String)>,
    headers: HeaderMap,
) -> StatusCode {
    let Some(key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else {
        // A step without its key could not be applied once: refuse it, and the checker sees
        // the saga fail.
        return StatusCode::BAD_REQUEST;
    };
    if side != "do" && side != "undo" {
        return StatusCode::NOT_FOUND;
    }
    effects.record(format!("{side}/{step}"), key.to_owned());
    StatusCode::OK
}

async fn refuse() -> StatusCode {
    StatusCode::BAD_REQUEST
}
