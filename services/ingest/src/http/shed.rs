//! Load shedding: a bound on requests served at once.
//!
//! Every request in progress may hold a body in memory, so this bound is what keeps ingest's memory
//! flat under any load. A request over it is answered 503 with `Retry-After` at once. Its body is
//! read and dropped chunk by chunk rather than left unread: closing a connection with unread data
//! makes the kernel reset it, and the client would then see a broken connection instead of the
//! answer. Draining holds one chunk at a time, so it costs bandwidth, never memory.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::Semaphore;

use super::problem::Problem;

#[derive(Clone)]
pub struct Slots {
    slots: Arc<Semaphore>,
    /// Past this many bytes a refused body is no longer drained; the connection closes instead.
    drain_limit: usize,
}

impl Slots {
    pub fn new(max_concurrent: usize, drain_limit: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_concurrent)),
            drain_limit,
        }
    }
}

pub async fn shed(State(slots): State<Slots>, request: Request, next: Next) -> Response {
    let Ok(_slot) = slots.slots.try_acquire() else {
        let mut body = request.into_body().into_data_stream();
        let mut drained = 0;
        while let Some(Ok(chunk)) = body.next().await {
            drained += chunk.len();
            if drained > slots.drain_limit {
                break;
            }
        }
        return Problem::unavailable("too many requests in progress; retry after the delay given")
            .into_response();
    };
    next.run(request).await
}
