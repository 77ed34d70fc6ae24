//! What `quorum replay` is asked to do, checked before anything is read or recorded: a reason, a
//! destination, and a consumer that exists.

use anyhow::Context;
use futures::TryStreamExt;
use uuid::Uuid;

use super::{Destination, ReplayArgs};
use crate::exit::CliError;

/// What the command line asks for, checked whole before anything is read or recorded.
pub(super) enum Asked {
    /// `--rebuild`; `reason` is `None` on a dry run.
    Rebuild {
        projection: String,
        reason: Option<String>,
    },
    Resume(Uuid),
    /// A new replay; `reason` is `None` on a dry run.
    Replay {
        destination: Destination,
        reason: Option<String>,
    },
}

pub(super) fn asked(args: &ReplayArgs) -> anyhow::Result<Asked> {
    if let Some(job) = args.resume {
        return Ok(Asked::Resume(job));
    }
    let reason = if args.dry_run {
        None
    } else {
        Some(required_reason(args)?)
    };
    let destination = match (
        &args.to_subject,
        &args.to_consumer,
        &args.to_file,
        &args.rebuild,
    ) {
        (Some(s), ..) => Destination::Subject { subject: s.clone() },
        (_, Some(c), ..) => Destination::Consumer {
            consumer: c.clone(),
        },
        (_, _, Some(p), _) => Destination::File { path: p.clone() },
        (.., Some(projection)) => {
            return Ok(Asked::Rebuild {
                projection: projection.clone(),
                reason,
            });
        }
        _ => {
            return Err(CliError::usage(
                "say where to: --to-subject, --to-consumer, --to-file or --rebuild",
            )
            .into());
        }
    };
    Ok(Asked::Replay {
        destination,
        reason,
    })
}

fn required_reason(args: &ReplayArgs) -> anyhow::Result<String> {
    match args.reason.as_deref().map(str::trim) {
        Some(r) if !r.is_empty() => Ok(r.to_owned()),
        _ => Err(CliError::usage(
            "a replay needs --reason \"why\" (it is recorded with the replay)",
        )
        .into()),
    }
}

/// Refuses a consumer JetStream does not know: the events stream keeps every redeliver subject, so
/// a replay to a misspelt name would be stored and reported as sent, and read by no one.
pub(super) async fn known_consumer(
    js: &async_nats::jetstream::Context,
    consumer: &str,
) -> anyhow::Result<()> {
    let stream = js
        .get_stream(quorum_bus::EVENTS_STREAM)
        .await
        .with_context(|| format!("cannot read the stream {}", quorum_bus::EVENTS_STREAM))?;
    let mut names: Vec<String> = stream.consumer_names().try_collect().await?;
    if names.iter().any(|n| n == consumer) {
        return Ok(());
    }
    names.sort();
    let known = if names.is_empty() {
        "none (is the stack running?)".to_owned()
    } else {
        names.join(", ")
    };
    Err(CliError::failed(format!(
        "no consumer {consumer} on {}; consumers: {known}",
        quorum_bus::EVENTS_STREAM
    ))
    .into())
}
