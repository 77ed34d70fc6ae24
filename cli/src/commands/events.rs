//! `quorum events`: history through ingest's API, scoped to the key's tenant. One stream, or by
//! correlation id and time range; pages are followed until `--limit` events are shown (every one
//! with `--all`). When more are left, standard error says so with the cursor `--after` takes.

use chrono::{DateTime, Utc};

use crate::api::{Api, answer};
use crate::exit::CliError;
use crate::outln;
use crate::stack::Target;

#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// One stream (`query/<id>`), in version order.
    #[arg(long, conflicts_with_all = ["correlation_id", "since", "until"])]
    pub stream: Option<String>,
    /// Every event of one correlation (a query's id), in position order.
    #[arg(long)]
    pub correlation_id: Option<String>,
    /// Recorded at or after: a duration ago (`1h`, `30m`, `2d`) or an RFC 3339 date.
    #[arg(long, value_parser = crate::args::time)]
    pub since: Option<DateTime<Utc>>,
    /// Recorded before: a duration ago (`1h`, `30m`, `2d`) or an RFC 3339 date.
    #[arg(long, value_parser = crate::args::time)]
    pub until: Option<DateTime<Utc>>,
    /// At most this many events; when more are left, the cursor to go on from is shown.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Every matching event, page after page (no --limit).
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
    /// Go on from this cursor: the `next` a previous run showed (a position, or in a stream the
    /// version to start at).
    #[arg(long)]
    pub after: Option<i64>,
    #[command(flatten)]
    pub api: Api,
}

pub async fn run(target: &Target, args: &EventsArgs, json: bool) -> anyhow::Result<()> {
    let (client, base, key) = args.api.connect(target)?;
    let limit = if args.all { usize::MAX } else { args.limit };
    let mut shown = 0;
    let mut cursor: Option<i64> = args.after;
    let mut more = None;
    while shown < limit {
        let page_size = (limit - shown).min(1000).to_string();
        let request = match &args.stream {
            Some(stream) => {
                let from = cursor.unwrap_or(1).to_string();
                client
                    .get(format!(
                        "{base}/v1/streams/{}/events",
                        stream.replace('/', "%2F")
                    ))
                    .query(&[
                        ("from_version", from.as_str()),
                        ("limit", page_size.as_str()),
                    ])
            }
            None => {
                let mut query = vec![
                    ("after", cursor.unwrap_or(0).to_string()),
                    ("limit", page_size.clone()),
                ];
                if let Some(c) = &args.correlation_id {
                    query.push(("correlation_id", c.clone()));
                }
                if let Some(t) = args.since {
                    query.push(("since", crate::times::rfc3339(t)));
                }
                if let Some(t) = args.until {
                    query.push(("until", crate::times::rfc3339(t)));
                }
                client.get(format!("{base}/v1/events")).query(&query)
            }
        };
        let page = answer(request.bearer_auth(&key).send().await?).await?;
        for stored in page["events"].as_array().into_iter().flatten() {
            shown += 1;
            let shown_event = crate::shape::from_history(stored);
            if json {
                outln!("{shown_event}")?;
            } else {
                let e = &stored["event"];
                outln!(
                    "{:>8}  {}  {}  {} v{}  {}",
                    stored["position"],
                    shown_event["recorded_at"].as_str().unwrap_or(""),
                    e["type"].as_str().unwrap_or(""),
                    stored["stream"].as_str().unwrap_or(""),
                    stored["version"],
                    e["id"].as_str().unwrap_or("")
                )?;
            }
        }
        more = page["next"].as_i64();
        match more {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if let Some(next) = more {
        // Standard error, so that standard output stays the events alone (lines of JSON under
        // --json); the notice is JSON too there.
        if json {
            eprintln!("{}", serde_json::json!({ "more": true, "next": next }));
        } else {
            eprintln!(
                "more events: go on with --after {next}, or --all for every one (showing {shown})"
            );
        }
    }
    if shown == 0 && limit > 0 && args.after.is_none() {
        // Asked for one stream or correlation: finding nothing is worth an exit code (a typo, or
        // another tenant's key). A time range alone may rightly hold nothing.
        let asked = match (&args.stream, &args.correlation_id) {
            (Some(s), _) => Some(format!("in stream {s}")),
            (None, Some(c)) => Some(format!("with correlation id {c}")),
            (None, None) => None,
        };
        if let Some(asked) = asked {
            return Err(CliError::failed(format!(
                "no events {asked} that this key's tenant can see"
            ))
            .into());
        }
    }
    Ok(())
}
