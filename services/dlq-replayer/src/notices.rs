//! Watching the dead-letter notices on `QUORUM_DLQ`: each one is logged for the operator and counted.
//! The notices only tell; the letter itself was committed to Postgres before its notice was sent,
//! with its `quorum.dlq.parked` event. So this reads with an ordered consumer from new messages on,
//! with no acks: a notice missed while the replayer was down loses nothing, `quorum dlq list` still
//! shows the letter.

use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::pull::OrderedConfig};
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Metric: dead-letter notices seen, by consumer.
pub const NOTICES_TOTAL: &str = "quorum_dlq_notices_total";

pub async fn run(js: jetstream::Context, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        if let Err(e) = watch(&js, &shutdown).await {
            warn!(error = %e, "dead-letter notices: watching again");
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
    }
}

async fn watch(
    js: &jetstream::Context,
    shutdown: &CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stream = js.get_stream(quorum_bus::DLQ_STREAM).await?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: "quorum.dlq.>".into(),
            deliver_policy: DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = messages.next() => match next {
                Some(m) => m?,
                None => return Ok(()),
            },
        };
        let header = |name: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        // quorum.dlq.<consumer>.<tenant>
        let consumer = msg.subject.split('.').nth(2).unwrap_or("_").to_owned();
        info!(
            consumer = %consumer,
            dead_letter = %header("Quorum-Dead-Letter-Id"),
            event_type = %header("ce-type"),
            error = %header("Quorum-Error"),
            "dead letter parked"
        );
        ::metrics::counter!(NOTICES_TOTAL, "consumer" => consumer).increment(1);
    }
}
