//! A message's headers as JSON and back: how dead letters keep the headers of the message they
//! hold, so that an operator can read them and a replay can send them again.

use async_nats::HeaderMap;
use serde_json::{Map, Value};

/// The headers as a JSON object of name to list of values (for dead letters and inspection).
pub fn headers_json(headers: Option<&HeaderMap>) -> Value {
    let mut out = Map::new();
    if let Some(h) = headers {
        for (name, values) in h.iter() {
            let values: Vec<Value> = values
                .iter()
                .map(|v| Value::String(v.as_str().to_owned()))
                .collect();
            out.insert(name.to_string(), Value::Array(values));
        }
    }
    Value::Object(out)
}

/// The headers [`headers_json`] wrote, back as NATS headers (for replaying a dead letter). Values
/// that are not strings are skipped: `headers_json` never writes them.
pub fn headers_from_json(json: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(map) = json.as_object() {
        for (name, values) in map {
            for v in values.as_array().into_iter().flatten() {
                if let Some(v) = v.as_str() {
                    headers.append(name.as_str(), v);
                }
            }
        }
    }
    headers
}
