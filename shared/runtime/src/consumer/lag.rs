//! A durable consumer's lag: the messages it has not finished (not yet delivered, or delivered and
//! not acknowledged) and the age of the oldest of them. Reported as gauges by every process that
//! runs the consumer, and shown by `quorum status`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream;
use async_nats::jetstream::consumer;
use async_nats::jetstream::stream::RawMessageErrorKind;
use tokio_util::sync::CancellationToken;

use crate::metrics as names;

/// How far behind a durable consumer is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    /// Messages not yet delivered, plus those delivered and not yet acknowledged.
    pub messages: u64,
    /// How long ago the oldest of them was stored; `None` when there are none (or none was left
    /// by the time it was looked for).
    pub oldest: Option<Duration>,
}

/// The lag of the consumer `info` describes, on `stream`.
///
/// Every unfinished message comes after the consumer's ack floor, so the oldest is the first
/// message after it that the consumer's filter takes. The stream is in time order and the
/// message just after the floor comes no later than that one, so its age is used: at most as old
/// as the oldest unfinished message's, and no older than what was stored in between (other
/// consumers' subjects).
pub async fn lag(
    stream: &jetstream::stream::Stream,
    info: &consumer::Info,
) -> Result<Lag, jetstream::stream::RawMessageError> {
    let messages = info.num_pending + info.num_ack_pending as u64;
    if messages == 0 {
        return Ok(Lag {
            messages,
            oldest: None,
        });
    }
    // The first message still stored at or after the one just past the floor: the message just
    // past it may be gone by now (a work queue drops what is acknowledged, and `info` was read a
    // round trip ago), and asking for it by its sequence alone would fail the whole look.
    let looked = stream
        .raw_message_builder()
        .sequence(info.ack_floor.stream_sequence + 1)
        .next_by_subject(">")
        .send()
        .await;
    let message = match looked {
        Ok(message) => message,
        // Nothing after the floor is stored any more: what `info` counted finished meanwhile.
        Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {
            return Ok(Lag {
                messages,
                oldest: None,
            });
        }
        Err(e) => return Err(e),
    };
    let stored = message.time.unix_timestamp_nanos();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as i128;
    let age = u64::try_from(now.saturating_sub(stored)).unwrap_or(0);
    Ok(Lag {
        messages,
        oldest: Some(Duration::from_nanos(age)),
    })
}

/// How often a consumer's process reports its lag.
const EVERY: Duration = Duration::from_secs(5);

/// Reports the lag of durable `name` on `stream` as gauges every few seconds until `shutdown`.
/// A failed look is logged at debug and tried again: the consumer's own loop reports NATS trouble.
pub(crate) async fn report(
    js: jetstream::Context,
    stream: String,
    name: String,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let looked = async {
            let stream = js.get_stream(&stream).await.map_err(|e| e.to_string())?;
            let info = stream
                .consumer_info(&name)
                .await
                .map_err(|e| e.to_string())?;
            lag(&stream, &info).await.map_err(|e| e.to_string())
        };
        match looked.await {
            Ok(lag) => {
                let consumer = name.clone();
                metrics::gauge!(names::CONSUMER_PENDING_MESSAGES, names::LABEL_CONSUMER => consumer.clone())
                    .set(lag.messages as f64);
                metrics::gauge!(names::CONSUMER_OLDEST_PENDING_SECONDS, names::LABEL_CONSUMER => consumer)
                    .set(lag.oldest.map_or(0.0, |d| d.as_secs_f64()));
            }
            Err(error) => {
                tracing::debug!(consumer = %name, %error, "cannot read the consumer's lag")
            }
        }
    }
}
