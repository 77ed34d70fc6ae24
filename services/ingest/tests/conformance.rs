//! The CloudEvents conformance vectors (kept beside the project, not in it) through the HTTP API:
//! every invalid event and batch refused with nothing stored; every valid one accepted and read back
//! with its attributes and data intact, in structured and in binary mode.

use std::path::PathBuf;

use base64::Engine;
use quorum_auth::Role;
use quorum_domain::cloudevent;
use serde_json::{Map, Value, json};

use crate::common;
use common::{Ingest, ingest};

fn vectors_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("QUORUM_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/conformance/cloudevents")
        });
    let found = dir.join("format-json").is_dir();
    quorum_testkit::require(
        found,
        &format!(
            "no CloudEvents conformance vectors at {} (set QUORUM_CONFORMANCE_DIR)",
            dir.display()
        ),
    )
    .then_some(dir)
}

/// The `tests` of one vector file: (test id, the event or batch).
fn load(dir: &std::path::Path, file: &str) -> anyhow::Result<Vec<(String, Value)>> {
    let doc: Value = serde_json::from_slice(&std::fs::read(dir.join("format-json").join(file))?)?;
    Ok(doc["tests"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("{file}: no tests"))?
        .iter()
        .map(|t| {
            let body = t
                .get("event")
                .or_else(|| t.get("batch"))
                .cloned()
                .unwrap_or(Value::Null);
            (t["id"].as_str().unwrap_or_default().to_owned(), body)
        })
        .collect())
}

/// The vector's event with a unique id (several vectors share one), so each is stored on its own.
fn unique(test: &str, event: &Value) -> Value {
    let mut e = event.clone();
    e["id"] = json!(format!("{test}-{}", event["id"].as_str().unwrap_or("")));
    e
}

#[tokio::test]
async fn invalid_events_and_batches_are_refused_and_store_nothing() -> anyhow::Result<()> {
    let Some(dir) = vectors_dir() else {
        return Ok(());
    };
    let ing = ingest(|_| {}).await?;
    let key = ing.key("acme", &[Role::Publisher]).await?;
    let events = load(&dir, "invalid-events.json")?;
    let batches = load(&dir, "invalid-batches.json")?;
    assert_eq!(
        (events.len(), batches.len()),
        (25, 3),
        "the vector set changed"
    );
    for (test, event) in &events {
        let a = ing
            .post(
                Some(&key),
                "application/cloudevents+json",
                &[],
                event.to_string(),
            )
            .await?;
        assert_eq!(a.status, 400, "{test} was not refused: {:?}", a.json);
        assert_eq!(a.content_type(), "application/problem+json", "{test}");
    }
    for (test, batch) in &batches {
        let a = ing
            .post(
                Some(&key),
                "application/cloudevents-batch+json",
                &[],
                batch.to_string(),
            )
            .await?;
        assert_eq!(a.status, 400, "{test} was not refused: {:?}", a.json);
    }
    assert_eq!(ing.events_stored().await?, 0);
    Ok(())
}

#[tokio::test]
async fn valid_events_round_trip_in_structured_mode() -> anyhow::Result<()> {
    let Some(dir) = vectors_dir() else {
        return Ok(());
    };
    let ing = ingest(|_| {}).await?;
    let (key, reader) = keys(&ing).await?;
    let events = load(&dir, "valid-events.json")?;
    assert_eq!(events.len(), 10, "the vector set changed");
    for (test, event) in &events {
        let sent = unique(test, event);
        let a = ing
            .post(
                Some(&key),
                "application/cloudevents+json",
                &[],
                sent.to_string(),
            )
            .await?;
        assert_eq!(a.status, 202, "{test}: {:?}", a.json);
        let back = read_back(&ing, &reader, &a.json["events"][0]).await?;
        assert_intact(test, &sent, &back, false);
    }

    let batches = load(&dir, "valid-batches.json")?;
    assert_eq!(batches.len(), 5, "the vector set changed");
    let mut expected = events.len() as i64;
    for (test, batch) in &batches {
        let sent: Vec<Value> = batch
            .as_array()
            .unwrap()
            .iter()
            .map(|e| unique(test, e))
            .collect();
        let a = ing
            .post(
                Some(&key),
                "application/cloudevents-batch+json",
                &[],
                Value::from(sent.clone()).to_string(),
            )
            .await?;
        assert_eq!(a.status, 202, "{test}: {:?}", a.json);
        let answers = a.json["events"].as_array().unwrap();
        assert_eq!(answers.len(), sent.len(), "{test}: one answer per event");
        let mut ids = std::collections::HashSet::new();
        for (answer, e) in answers.iter().zip(&sent) {
            // A batch may repeat an event: stored once, the repeat told it is a duplicate.
            let first = ids.insert(e["id"].as_str().unwrap().to_owned());
            assert_eq!(answer["duplicate"], !first, "{test}");
            expected += i64::from(first);
            let back = read_back(&ing, &reader, answer).await?;
            assert_intact(test, e, &back, false);
        }
    }
    assert_eq!(ing.events_stored().await?, expected);
    Ok(())
}

#[tokio::test]
async fn valid_events_round_trip_in_binary_mode() -> anyhow::Result<()> {
    let Some(dir) = vectors_dir() else {
        return Ok(());
    };
    let ing = ingest(|_| {}).await?;
    let (key, reader) = keys(&ing).await?;
    for (test, event) in load(&dir, "valid-events.json")? {
        let sent = unique(&test, &event);
        let (headers, content_type, body) = to_binary(&sent);
        let mut req = ing
            .http
            .post(ing.url("/v1/events"))
            .bearer_auth(&key)
            .body(body);
        for (name, value) in &headers {
            req = req.header(name.as_str(), value.as_str());
        }
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let r = req.send().await?;
        let status = r.status().as_u16();
        let answer: Value = serde_json::from_slice(&r.bytes().await?)?;
        assert_eq!(status, 202, "{test}: {answer:?}");
        let back = read_back(&ing, &reader, &answer["events"][0]).await?;
        assert_intact(&test, &sent, &back, true);
    }
    Ok(())
}

async fn keys(ing: &Ingest) -> anyhow::Result<(String, String)> {
    Ok((
        ing.key("acme", &[Role::Publisher]).await?,
        ing.key("acme", &[Role::Auditor]).await?,
    ))
}

/// The stored event an answer points at, as the history API renders it.
async fn read_back(ing: &Ingest, reader: &str, answer: &Value) -> anyhow::Result<Value> {
    let stream = answer["stream"].as_str().unwrap().replace('/', "%2F");
    let version = answer["version"].as_u64().unwrap();
    let page = ing
        .get(
            reader,
            &format!("/v1/streams/{stream}/events?from_version={version}&limit=1"),
        )
        .await?;
    assert_eq!(page.status, 200, "{:?}", page.json);
    Ok(page.json["events"][0]["event"].clone())
}

/// Every attribute sent comes back equal (time as an instant; in binary mode, where HTTP headers
/// carry strings, extensions as their string form), the data too, and nothing is added but the
/// tenant the key stands for.
fn assert_intact(test: &str, sent: &Value, back: &Value, binary: bool) {
    let sent = sent.as_object().unwrap();
    let back = back.as_object().unwrap();
    let present: Map<String, Value> = sent
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (name, value) in &present {
        match name.as_str() {
            "data" | "data_base64" => {}
            "time" => {
                let instant = |v: &Value| {
                    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
                        .unwrap()
                        .to_utc()
                };
                assert_eq!(instant(value), instant(&back["time"]), "{test}: time");
            }
            _ if binary && !value.is_string() => {
                assert_eq!(back[name], Value::from(value.to_string()), "{test}: {name}");
            }
            _ => assert_eq!(&back[name], value, "{test}: {name}"),
        }
    }
    assert_eq!(data_of(&present), data_of(back), "{test}: data");
    let mut extra: Vec<&String> = back.keys().filter(|k| !present.contains_key(*k)).collect();
    extra.retain(|k| {
        k.as_str() != "tenant"
            && !(k.starts_with("data") && present.keys().any(|p| p.starts_with("data")))
    });
    assert!(extra.is_empty(), "{test}: attributes added: {extra:?}");
    assert_eq!(back["tenant"], "acme", "{test}");
}

/// The data's bytes, whichever member carries it.
fn data_of(event: &Map<String, Value>) -> Option<Vec<u8>> {
    if let Some(b64) = event.get("data_base64").and_then(Value::as_str) {
        return Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        );
    }
    let data = event.get("data").filter(|d| !d.is_null())?;
    let ct = event.get("datacontenttype").and_then(Value::as_str);
    Some(match data {
        Value::String(s) if !cloudevent::is_json_content_type(ct) => s.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap(),
    })
}

/// The event in HTTP binary mode: `ce-` headers (percent-encoded), content type, body.
fn to_binary(event: &Value) -> (Vec<(String, String)>, Option<String>, Vec<u8>) {
    let map = event.as_object().unwrap();
    let mut headers = Vec::new();
    for (name, value) in map {
        if matches!(name.as_str(), "data" | "data_base64" | "datacontenttype") || value.is_null() {
            continue;
        }
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        headers.push((
            format!("ce-{name}"),
            cloudevent::encode_http_header_value(&text),
        ));
    }
    let content_type = map
        .get("datacontenttype")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = data_of(map).unwrap_or_default();
    (headers, content_type, body)
}
