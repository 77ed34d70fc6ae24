//! Times as the CLI shows them: RFC 3339 in UTC with milliseconds (`2026-05-01T12:00:00.000Z`), one
//! format whichever service, library or path a time came from (chrono's serde writes nanoseconds,
//! Postgres `+00:00`, a publisher any offset).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

/// `t` the CLI's way.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time written as RFC 3339 (any offset, any precision) the CLI's way; `None` for other text.
pub fn normalized(text: &str) -> Option<String> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| rfc3339(t.with_timezone(&Utc)))
}

/// Rewrites, in place, every time in a JSON document the CLI prints: the values of keys named
/// `time`, `at`, `since`, `until` or ending in `_at`. Never inside an event's data (`data`,
/// `data_base64`): that is the publisher's, shown as sent.
pub fn normalize(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if matches!(key.as_str(), "data" | "data_base64") {
                    continue;
                }
                let is_time = matches!(key.as_str(), "time" | "at" | "since" | "until")
                    || key.ends_with("_at");
                match v {
                    Value::String(s) if is_time => {
                        if let Some(t) = normalized(s) {
                            *s = t;
                        }
                    }
                    _ => normalize(v),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        _ => {}
    }
}

/// `value` with its times the CLI's way.
pub fn normalized_json(mut value: Value) -> Value {
    normalize(&mut value);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_time_is_utc_with_milliseconds_and_data_is_left_alone() {
        let mut v = json!({
            "recorded_at": "2026-05-01T14:00:00.123456789+02:00",
            "event": {"time": "2026-05-01T12:00:00Z", "data": {"time": "2026-05-01T12:00:00Z"}},
            "errors": [{"at": "2026-05-01T12:00:00.5+00:00", "error": "x"}],
            "created_at": null,
            "name": "2026-05-01T12:00:00Z",
        });
        normalize(&mut v);
        assert_eq!(v["recorded_at"], "2026-05-01T12:00:00.123Z");
        assert_eq!(v["event"]["time"], "2026-05-01T12:00:00.000Z");
        assert_eq!(v["event"]["data"]["time"], "2026-05-01T12:00:00Z");
        assert_eq!(v["errors"][0]["at"], "2026-05-01T12:00:00.500Z");
        assert_eq!(v["created_at"], Value::Null);
        assert_eq!(v["name"], "2026-05-01T12:00:00Z");
    }
}
