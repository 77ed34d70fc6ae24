//! Times as every API writes them: RFC 3339 in UTC with milliseconds (`2026-12-06T05:37:33.757Z`),
//! the form the CLI prints too, so that a time read from one answer compares as text with another.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// For `#[serde(serialize_with = "quorum_http::time::millis")]`.
pub fn millis<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_with_milliseconds() {
        #[derive(serde::Serialize)]
        struct At(#[serde(serialize_with = "super::millis")] chrono::DateTime<chrono::Utc>);
        let t = chrono::DateTime::parse_from_rfc3339("2026-12-06T05:37:33.757298123+01:00")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            serde_json::to_string(&At(t)).unwrap(),
            "\"2026-12-06T04:37:33.757Z\""
        );
    }
}
