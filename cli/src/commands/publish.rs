//! `quorum publish`: send a CloudEvent the way an upstream system would, over HTTP (binary or
//! structured mode) or NATS (`QUORUM_INGEST`), from flags or from a file. Under `--json` one line
//! per event in the one event shape (see `shape`), over either path.

use std::path::PathBuf;

use anyhow::Context;
use bytes::Bytes;
use quorum_domain::{Event, TenantId, cloudevent};

use crate::api::{Api, answer};
use crate::outln;
use crate::shape::{self, Status, Stored};
use crate::stack::Target;

#[derive(Debug, Clone, clap::Args)]
pub struct PublishArgs {
    /// The event's type (with flags; ignored with --file).
    #[arg(long = "type", required_unless_present = "file")]
    pub ty: Option<String>,
    /// The event's source (a URI reference). Sources under `/quorum/` are Quorum's own services'
    /// and refused by ingest.
    #[arg(long, default_value = "/operator/quorum-cli")]
    pub source: String,
    /// The event's id; a new UUID when not given.
    #[arg(long)]
    pub id: Option<String>,
    /// The event's subject (what it is about): its stream is `sub-<tenant>/<subject>`.
    #[arg(long)]
    pub subject: Option<String>,
    /// The data, as text; `@path` reads it from a file.
    #[arg(long)]
    pub data: Option<String>,
    /// The data's content type.
    #[arg(long, default_value = "application/json")]
    pub content_type: String,
    /// Extension attributes, `name=value` (repeatable).
    #[arg(long = "ext", value_parser = parse_ext)]
    pub extensions: Vec<(String, String)>,
    /// A structured CloudEvent (a JSON object) or a batch (a JSON array) to send instead of flags.
    #[arg(long, conflicts_with_all = ["ty", "data", "id", "subject"])]
    pub file: Option<PathBuf>,
    /// How the event travels.
    #[arg(long, value_enum, default_value = "http")]
    pub via: Via,
    /// HTTP mode: binary (`ce-` headers) or structured (one JSON document).
    #[arg(long, value_enum, default_value = "binary")]
    pub mode: Mode,
    /// The tenant (NATS only: over HTTP the key decides).
    #[arg(long, default_value = "default")]
    pub tenant: String,
    #[command(flatten)]
    pub api: Api,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    Http,
    Nats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Binary,
    Structured,
}

fn parse_ext(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected name=value, got {s:?}"))
}

pub async fn run(target: &Target, args: &PublishArgs, json: bool) -> anyhow::Result<()> {
    let events = events(args)?;
    match args.via {
        Via::Http => http(target, args, &events, json).await,
        Via::Nats => nats(target, args, &events, json).await,
    }
}

/// The events to send, checked here with the rules ingest applies, so a mistake is told before
/// anything is sent.
fn events(args: &PublishArgs) -> anyhow::Result<Vec<Event>> {
    if let Some(path) = &args.file {
        let text = std::fs::read(path).with_context(|| format!("read {}", path.display()))?;
        let first = text.iter().find(|b| !b.is_ascii_whitespace());
        return Ok(if first == Some(&b'[') {
            cloudevent::parse_batch(&text)?
        } else {
            vec![cloudevent::parse_structured(&text)?]
        });
    }
    let data = match &args.data {
        Some(d) if d.starts_with('@') => {
            Some(std::fs::read(&d[1..]).with_context(|| format!("read {}", &d[1..]))?)
        }
        Some(d) => Some(d.clone().into_bytes()),
        None => None,
    };
    let mut attributes = vec![
        ("specversion".to_owned(), "1.0".to_owned()),
        (
            "id".to_owned(),
            args.id
                .clone()
                .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        ),
        ("source".to_owned(), args.source.clone()),
        ("type".to_owned(), args.ty.clone().unwrap_or_default()),
        ("time".to_owned(), crate::times::rfc3339(chrono::Utc::now())),
    ];
    if let Some(s) = &args.subject {
        attributes.push(("subject".to_owned(), s.clone()));
    }
    attributes.extend(args.extensions.iter().cloned());
    let content_type = data.as_ref().map(|_| args.content_type.as_str());
    Ok(vec![cloudevent::parse_binary(
        attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        content_type,
        Bytes::from(data.unwrap_or_default()),
    )?])
}

async fn http(
    target: &Target,
    args: &PublishArgs,
    events: &[Event],
    json: bool,
) -> anyhow::Result<()> {
    let (client, base, key) = args.api.connect(target)?;
    let url = format!("{base}/v1/events");
    let request = match (events, args.mode) {
        ([one], Mode::Binary) => {
            let mut req = client.post(&url);
            for (name, value) in attributes(one) {
                req = req.header(
                    format!("ce-{name}"),
                    cloudevent::encode_http_header_value(&value),
                );
            }
            if let Some(ct) = &one.datacontenttype {
                req = req.header("content-type", ct.as_str());
            }
            req.body(one.data.clone().unwrap_or_default())
        }
        ([one], Mode::Structured) => client
            .post(&url)
            .header("content-type", "application/cloudevents+json")
            .body(cloudevent::to_structured(one).to_string()),
        (many, _) => {
            let batch: Vec<serde_json::Value> =
                many.iter().map(cloudevent::to_structured).collect();
            client
                .post(&url)
                .header("content-type", "application/cloudevents-batch+json")
                .body(serde_json::to_vec(&batch)?)
        }
    };
    let response = request
        .bearer_auth(key)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let body = answer(response).await?;
    // Ingest answers each event in the order sent.
    for (sent, e) in events
        .iter()
        .zip(body["events"].as_array().into_iter().flatten())
    {
        let status = if e["duplicate"] == true {
            Status::Duplicate
        } else {
            Status::Stored
        };
        if json {
            let stored = Stored {
                stream: e["stream"].as_str().map(str::to_owned),
                version: e["version"].as_i64(),
                position: e["position"].as_i64(),
                recorded_at: e["recorded_at"].as_str().map(str::to_owned),
            };
            outln!(
                "{}",
                shape::event(cloudevent::to_structured(sent), status, stored)
            )?;
        } else {
            let what = status.as_str();
            outln!(
                "{what}  {}  stream {} v{}  position {}",
                e["id"].as_str().unwrap_or(""),
                e["stream"].as_str().unwrap_or(""),
                e["version"],
                e["position"]
            )?;
        }
    }
    Ok(())
}

async fn nats(
    target: &Target,
    args: &PublishArgs,
    events: &[Event],
    json: bool,
) -> anyhow::Result<()> {
    let (nats_url, _) = target.urls()?;
    let tenant = TenantId::new(args.tenant.clone())?;
    let js = async_nats::jetstream::new(target.connect_nats(&nats_url).await?);
    for event in events {
        let subject = quorum_bus::subjects::ingest(&tenant, &event.ty);
        let (headers, payload) = quorum_bus::encode(event);
        let ack = js
            .publish_with_headers(subject.clone(), headers, payload)
            .await?
            .await
            .with_context(|| format!("publish to {subject}"))?;
        if json {
            // Queued, not stored yet: ingest stores it from the queue. A duplicate is one the
            // queue saw within its window.
            let status = if ack.duplicate {
                Status::Duplicate
            } else {
                Status::Queued
            };
            outln!(
                "{}",
                shape::event(cloudevent::to_structured(event), status, Stored::default())
            )?;
        } else {
            let what = if ack.duplicate { "duplicate" } else { "queued" };
            outln!(
                "{what}  {}  on {subject} (sequence {})",
                event.id,
                ack.sequence
            )?;
        }
    }
    Ok(())
}

/// Every attribute but the data's content type, as binary mode carries them.
fn attributes(event: &Event) -> Vec<(String, String)> {
    let structured = cloudevent::to_structured(event);
    structured
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| !matches!(k.as_str(), "data" | "data_base64" | "datacontenttype"))
        .map(|(k, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            (k.clone(), text)
        })
        .collect()
}
