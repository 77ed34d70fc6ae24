//! JetStream with no Quorum code in the way: pipelined publishes, as the relay makes them, and
//! deliveries to a durable pull consumer with explicit acks, as every service reads them. Each
//! message is the sample event as the contract puts it on the wire (binary mode: `ce-` headers,
//! the data as the payload), encoded once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer::pull, stream};
use bytes::Bytes;
use futures::StreamExt;
use quorum_domain::Event;

use crate::bench::stats::rate;

/// Publishes `total` copies of `sample`'s message to `subject`, each with its own message id, up to
/// 1,000 acks outstanding and awaited in order (as the relay does).
async fn publish_pipelined(
    js: &jetstream::Context,
    subject: &'static str,
    total: u64,
    sample: &Event,
) -> anyhow::Result<()> {
    let (headers, payload): (HeaderMap, Bytes) = quorum_bus::encode(sample);
    let mut pending = VecDeque::new();
    for i in 0..total {
        let msg = jetstream::message::PublishMessage::build()
            .headers(headers.clone())
            .payload(payload.clone())
            .message_id(i.to_string());
        pending.push_back(js.send_publish(subject, msg).await?);
        if pending.len() >= 1000 {
            pending.pop_front().expect("non-empty").await?;
        }
    }
    for ack in pending {
        ack.await?;
    }
    Ok(())
}

/// A scratch stream of `name` over `subject`, created afresh.
async fn scratch_stream(
    js: &jetstream::Context,
    name: &str,
    subject: &str,
) -> anyhow::Result<stream::Stream> {
    let _ = js.delete_stream(name).await;
    Ok(js
        .create_stream(stream::Config {
            name: name.into(),
            subjects: vec![subject.into()],
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        })
        .await?)
}

/// Pipelined JetStream publishes of `sample` into a scratch stream. Returns msgs/s.
pub async fn jetstream_pipelined(
    js: &jetstream::Context,
    total: u64,
    sample: &Event,
) -> anyhow::Result<f64> {
    let name = "QUORUM_BENCH_RAW";
    scratch_stream(js, name, "quorum.bench.raw").await?;
    let started = Instant::now();
    publish_pipelined(js, "quorum.bench.raw", total, sample).await?;
    let elapsed = started.elapsed();
    js.delete_stream(name).await?;
    Ok(rate(total, elapsed))
}

/// A scratch stream filled before the clock starts, so that [`DeliveryStream::consume`] times the
/// deliveries alone.
pub struct DeliveryStream {
    js: jetstream::Context,
    stream: stream::Stream,
    total: u64,
}

impl DeliveryStream {
    const NAME: &'static str = "QUORUM_BENCH_DELIVER";
    const SUBJECT: &'static str = "quorum.bench.deliver";

    /// A stream holding `total` copies of `sample`'s message.
    pub async fn filled(
        js: &jetstream::Context,
        total: u64,
        sample: &Event,
    ) -> anyhow::Result<Self> {
        let stream = scratch_stream(js, Self::NAME, Self::SUBJECT).await?;
        publish_pipelined(js, Self::SUBJECT, total, sample).await?;
        Ok(Self {
            js: js.clone(),
            stream,
            total,
        })
    }

    /// Every message delivered to a durable pull consumer configured as Quorum's are (explicit
    /// acks, 1,024 acks pending at most, 128 per pull), each acked as it arrives, until the server
    /// holds no ack pending: its side of every ack is in the time. Returns msgs/s. The stream is
    /// deleted after.
    pub async fn consume(self) -> anyhow::Result<f64> {
        let mut consumer = self
            .stream
            .create_consumer(pull::Config {
                durable_name: Some("bench".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: 1024,
                ..Default::default()
            })
            .await?;
        let started = Instant::now();
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(128)
            .messages()
            .await?;
        for _ in 0..self.total {
            let msg = messages
                .next()
                .await
                .ok_or_else(|| anyhow::anyhow!("the delivery stream ended early"))?
                .map_err(|e| anyhow::anyhow!("delivery: {e}"))?;
            msg.ack().await.map_err(|e| anyhow::anyhow!("ack: {e}"))?;
        }
        drop(messages);
        let deadline = Instant::now() + Duration::from_secs(60);
        while consumer.info().await?.num_ack_pending > 0 {
            anyhow::ensure!(Instant::now() < deadline, "acks still pending after 60 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed();
        self.js.delete_stream(Self::NAME).await?;
        Ok(rate(self.total, elapsed))
    }
}
