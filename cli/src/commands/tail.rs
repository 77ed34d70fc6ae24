//! `quorum tail`: committed events live from JetStream as the relay publishes them, filtered by
//! tenant, type and correlation id. Reads through an ephemeral consumer that acks nothing, so it
//! never disturbs the services' own consumers. Under `--json` each event in the one event shape
//! (see `shape`).

use std::time::Duration;

use async_nats::jetstream::consumer::{self, DeliverPolicy};
use futures::StreamExt;
use quorum_bus::subjects;

use quorum_domain::cloudevent;

use crate::outln;
use crate::shape::{self, Status, Stored};
use crate::stack::Target;

#[derive(Debug, Clone, clap::Args)]
pub struct TailArgs {
    /// Only this tenant's events.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only events of this type (a NATS subject pattern of the type: `quorum.expert.>`).
    #[arg(long = "type", value_parser = type_pattern)]
    pub ty: Option<String>,
    /// Only events of this correlation (a query's id).
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Start from the oldest event the stream keeps, not from now.
    #[arg(long)]
    pub from_start: bool,
    /// Stop after this many events.
    #[arg(long)]
    pub count: Option<usize>,
}

/// A type pattern as a subject filter takes it, checked before anything is sent: dot-separated
/// words with no space or control character, `*` for one word, `>` for the rest.
fn type_pattern(s: &str) -> Result<String, String> {
    let tokens: Vec<&str> = s.split('.').collect();
    let bad = tokens.iter().enumerate().any(|(i, t)| {
        t.is_empty()
            || t.chars().any(|c| c.is_whitespace() || c.is_control())
            || (t.contains('>') && (*t != ">" || i + 1 != tokens.len()))
            || (t.contains('*') && *t != "*")
    });
    if bad {
        return Err(format!(
            "{s:?} is not a type pattern: dot-separated words without spaces, `*` for one word and `>` for the rest (quorum.expert.>)"
        ));
    }
    Ok(s.to_owned())
}

pub async fn run(target: &Target, args: &TailArgs, json: bool) -> anyhow::Result<()> {
    let (nats_url, _) = target.urls()?;
    let js = async_nats::jetstream::new(target.connect_nats(&nats_url).await?);
    let tenant = match &args.tenant {
        Some(t) => subjects::token(t),
        None => "*".to_owned(),
    };
    let ty = match &args.ty {
        Some(t) => t.clone(),
        None => ">".to_owned(),
    };
    let filter = format!("quorum.evt.{tenant}.{ty}");
    let stream = js.get_stream(quorum_bus::EVENTS_STREAM).await?;
    let consumer: consumer::PullConsumer = stream
        .create_consumer(consumer::pull::Config {
            deliver_policy: if args.from_start {
                DeliverPolicy::All
            } else {
                DeliverPolicy::New
            },
            ack_policy: consumer::AckPolicy::None,
            filter_subject: filter,
            inactive_threshold: Duration::from_secs(30),
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let mut shown = 0;
    while let Some(msg) = messages.next().await {
        let msg = msg?;
        let event = match quorum_bus::decode(msg.headers.as_ref(), &msg.payload) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("undecodable message on {}: {e}", msg.subject);
                continue;
            }
        };
        if let Some(c) = &args.correlation_id
            && event.correlationid.as_deref() != Some(c.as_str())
            && event.id != *c
        {
            continue;
        }
        let header = |name: &str| {
            msg.headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        if json {
            // The relay's headers say where the event is stored; a message carries no version
            // or record time.
            let stored = Stored {
                stream: header(quorum_bus::STREAM_HEADER),
                position: header(quorum_relay::POSITION_HEADER).and_then(|p| p.parse().ok()),
                ..Stored::default()
            };
            let shown = shape::event(cloudevent::to_structured(&event), Status::Stored, stored);
            outln!("{shown}")?;
        } else {
            let stream = header(quorum_bus::STREAM_HEADER).unwrap_or_default();
            outln!(
                "{}  {}  {}  {}  {}",
                event.time.map(crate::times::rfc3339).unwrap_or_default(),
                event.tenant.as_ref().map(|t| t.as_str()).unwrap_or("-"),
                event.ty,
                stream,
                event.id
            )?;
        }
        shown += 1;
        if args.count.is_some_and(|n| shown >= n) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::type_pattern;

    #[test]
    fn type_patterns_are_checked_before_sending() {
        for ok in [
            "quorum.expert.>",
            "com.example.order.created",
            "quorum.*.responded",
            ">",
        ] {
            assert!(type_pattern(ok).is_ok(), "{ok}");
        }
        for bad in ["bad type", "a..b", "a.>.b", "a*.b", "x\ny", ""] {
            assert!(type_pattern(bad).is_err(), "{bad:?}");
        }
    }
}
