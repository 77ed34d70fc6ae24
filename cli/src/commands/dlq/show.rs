//! `quorum dlq show` as text: what an operator reads to decide between replay and discard. `--json`
//! prints the API's letter instead, its times the CLI's way.

use serde_json::Value;

use crate::outln;

/// Prints one letter as the dead-letter API answers it.
pub(super) fn print(letter: &Value) -> anyhow::Result<()> {
    let text = |key: &str| letter[key].as_str().unwrap_or("-").to_owned();
    outln!(
        "dead letter {}  {}  tenant {}",
        text("id"),
        text("status"),
        text("tenant")
    )?;
    outln!("  consumer    {}", text("consumer"))?;
    let seq = letter["stream_seq"]
        .as_i64()
        .map(|s| format!("  (stream sequence {s})"))
        .unwrap_or_default();
    outln!("  subject     {}{seq}", text("subject"))?;
    outln!("  event       {} {}", text("event_type"), text("event_id"))?;
    outln!(
        "  failed      {} .. {}, {} deliveries",
        text("first_failed_at"),
        text("last_failed_at"),
        letter["attempts"]
    )?;
    if let Some(from) = letter["replayed_from"].as_str() {
        outln!("  replayed from {from}")?;
    }
    if let Some(r) = letter["resolution"].as_str() {
        outln!("  resolution  {r}")?;
    }
    if let Some(job) = letter["replay_job"].as_str() {
        outln!("  replay job  {job}")?;
    }
    outln!("  errors:")?;
    for e in letter["errors"].as_array().into_iter().flatten() {
        outln!(
            "    {}  {}",
            e["at"].as_str().unwrap_or("-"),
            e["error"].as_str().unwrap_or("")
        )?;
    }
    let headers = letter["headers"].as_object().cloned().unwrap_or_default();
    if !headers.is_empty() {
        outln!("  headers:")?;
        for (name, values) in &headers {
            let values = match values {
                Value::Array(vs) => vs
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                v => v.as_str().map_or_else(|| v.to_string(), str::to_owned),
            };
            outln!("    {name}: {values}")?;
        }
    }
    let payload = letter["payload"].as_str().unwrap_or("");
    outln!(
        "  payload ({}, {} characters):",
        text("payload_encoding"),
        payload.chars().count()
    )?;
    for line in payload.lines() {
        outln!("    {line}")?;
    }
    Ok(())
}
