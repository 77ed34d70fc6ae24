//! The rules every CloudEvent obeys, whichever way it arrived.

use chrono::{DateTime, Utc};

use super::CeError;
use crate::Event;

/// The attributes every event must have, as a binding found them.
pub(crate) struct Required {
    pub specversion: Option<String>,
    pub id: Option<String>,
    pub source: Option<String>,
    pub ty: Option<String>,
}

impl Required {
    /// Checks the spec version and moves the rest into `e`; `prefix` names how the binding
    /// carries attributes (`ce-` headers), for the error message.
    pub fn fill(self, e: &mut Event, prefix: &str) -> Result<(), CeError> {
        let missing = |name: &str| {
            let hint = if prefix.is_empty() {
                String::new()
            } else {
                format!(" ({prefix}{name})")
            };
            CeError::new(name, format!("required{hint}"))
        };
        match self.specversion.as_deref() {
            Some("1.0") => {}
            Some(other) => {
                return Err(CeError::new(
                    "specversion",
                    format!("{other:?} is not supported; only \"1.0\""),
                ));
            }
            None => return Err(missing("specversion")),
        }
        e.id = self.id.ok_or_else(|| missing("id"))?;
        e.source = self.source.ok_or_else(|| missing("source"))?;
        e.ty = self.ty.ok_or_else(|| missing("type"))?;
        Ok(())
    }
}

/// Checks an event built by some other path (a NATS message, the CLI) against the rules parsing
/// enforces.
pub fn validate(event: &Event) -> Result<(), CeError> {
    bounded(event)?;
    non_empty("id", &event.id)?;
    source(&event.source)?;
    non_empty("type", &event.ty)?;
    if let Some(s) = &event.subject {
        non_empty("subject", s)?;
    }
    if let Some(ct) = &event.datacontenttype {
        content_type(ct)?;
    }
    if let Some(s) = &event.dataschema {
        dataschema(s)?;
    }
    for (name, value) in &event.extensions {
        extension_name(name)?;
        extension_value(name, value)?;
    }
    Ok(())
}

/// The longest value each attribute may have, in bytes: every attribute becomes a NATS header and
/// a column, and none may cost downstream more than an identifier should.
pub const MAX_ID_BYTES: usize = 256;
pub const MAX_SOURCE_BYTES: usize = 1024;
pub const MAX_TYPE_BYTES: usize = 256;
pub const MAX_SUBJECT_BYTES: usize = 1024;
/// `dataschema`, `datacontenttype`, the trace headers, the derived ids and each extension.
pub const MAX_ATTRIBUTE_BYTES: usize = 2048;
/// Extension attributes an event may carry.
pub const MAX_EXTENSIONS: usize = 32;

/// Every attribute is at most its length and holds no control character (CR, LF, NUL, …): each
/// travels as a NATS header line, where a line break would end the header and a NUL is refused,
/// and a value that cannot be published must be refused where it enters, not parked later.
fn bounded(event: &Event) -> Result<(), CeError> {
    let derived = [
        ("correlationid", event.correlationid.as_deref()),
        ("causationid", event.causationid.as_deref()),
        ("replayof", event.replayof.as_deref()),
        ("traceparent", event.traceparent.as_deref()),
        ("tracestate", event.tracestate.as_deref()),
        ("dataschema", event.dataschema.as_deref()),
        ("datacontenttype", event.datacontenttype.as_deref()),
    ];
    let fixed = [
        ("id", Some(event.id.as_str()), MAX_ID_BYTES),
        ("source", Some(event.source.as_str()), MAX_SOURCE_BYTES),
        ("type", Some(event.ty.as_str()), MAX_TYPE_BYTES),
        ("subject", event.subject.as_deref(), MAX_SUBJECT_BYTES),
    ];
    let all = fixed.into_iter().chain(
        derived
            .into_iter()
            .map(|(n, v)| (n, v, MAX_ATTRIBUTE_BYTES)),
    );
    for (name, value, max) in all {
        if let Some(v) = value {
            header_safe(name, v, max)?;
        }
    }
    if event.extensions.len() > MAX_EXTENSIONS {
        return Err(CeError::new(
            "",
            format!("at most {MAX_EXTENSIONS} extension attributes"),
        ));
    }
    for (name, value) in &event.extensions {
        if name.len() > 20 {
            return Err(CeError::new(
                name,
                "attribute names are at most 20 characters",
            ));
        }
        if let serde_json::Value::String(v) = value {
            header_safe(name, v, MAX_ATTRIBUTE_BYTES)?;
        }
    }
    Ok(())
}

/// At most `max` bytes, no control character, and no whitespace at either end: attributes travel
/// as NATS header lines, whose values clients trim, so `" 1"` would reach consumers as `"1"` and a
/// type of spaces as an empty one.
pub(crate) fn header_safe(name: &str, value: &str, max: usize) -> Result<(), CeError> {
    if value.len() > max {
        return Err(CeError::new(
            name,
            format!("{} bytes; at most {max}", value.len()),
        ));
    }
    if let Some((at, c)) = value.char_indices().find(|(_, c)| c.is_control()) {
        return Err(CeError::new(
            name,
            format!(
                "contains a control character (U+{:04X}) at byte {at}; attributes travel as header lines",
                c as u32
            ),
        ));
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return Err(CeError::new(
            name,
            "starts or ends with whitespace; attributes travel as header lines, whose values are trimmed",
        ));
    }
    Ok(())
}

pub(crate) fn non_empty(name: &str, value: &str) -> Result<(), CeError> {
    if value.is_empty() {
        Err(CeError::new(name, "must not be empty"))
    } else {
        Ok(())
    }
}

/// A URI-reference (RFC 3986): non-empty, no whitespace or control characters. Relative references
/// such as `#fragment` or `/orders` are fine.
pub(crate) fn source(value: &str) -> Result<(), CeError> {
    non_empty("source", value)?;
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CeError::new(
            "source",
            "not a URI-reference: contains whitespace",
        ));
    }
    Ok(())
}

/// An absolute URI. Never fetched.
pub(crate) fn dataschema(value: &str) -> Result<(), CeError> {
    non_empty("dataschema", value)?;
    match url::Url::parse(value) {
        Ok(_) => Ok(()),
        Err(e) => Err(CeError::new(
            "dataschema",
            format!("not an absolute URI: {e}"),
        )),
    }
}

/// RFC 3339, with seconds and an offset (`Z` or `±hh:mm`).
pub(crate) fn time(value: &str) -> Result<DateTime<Utc>, CeError> {
    let utc = DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            CeError::new(
                "time",
                format!("not an RFC 3339 timestamp ({value:?}): {e}"),
            )
        })?;
    // Stored and sent in UTC: an offset that moves the year out of 0000-9999 would be written as
    // `+10000-…` or `-0001-…`, which is not RFC 3339 and no consumer could read back.
    if !(0..=9999).contains(&chrono::Datelike::year(&utc)) {
        return Err(CeError::new(
            "time",
            format!("{value:?} is outside years 0000-9999 in UTC"),
        ));
    }
    Ok(utc)
}

/// RFC 2046: `type/subtype`, then `; name=value` parameters.
pub(crate) fn content_type(value: &str) -> Result<(), CeError> {
    let bad = |why: &str| {
        Err(CeError::new(
            "datacontenttype",
            format!("{value:?} is not an RFC 2046 media type: {why}"),
        ))
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or("").trim();
    let Some((ty, sub)) = essence.split_once('/') else {
        return bad("expected type/subtype");
    };
    if !is_token(ty) || !is_token(sub) {
        return bad("type and subtype are tokens");
    }
    for param in parts {
        let Some((name, val)) = param.trim().split_once('=') else {
            return bad("a parameter is name=value");
        };
        let quoted = val.len() >= 2 && val.starts_with('"') && val.ends_with('"');
        if !is_token(name.trim()) || !(quoted || is_token(val)) {
            return bad("a parameter is name=value");
        }
    }
    Ok(())
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `application/json`, `text/json`, or any `+json` type; an absent content type means JSON in the
/// JSON event format.
pub fn is_json_content_type(ct: Option<&str>) -> bool {
    let Some(ct) = ct else { return true };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

/// Lowercase ASCII letters and digits only.
pub(crate) fn extension_name(name: &str) -> Result<(), CeError> {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(CeError::new(
            name,
            "attribute names are lowercase letters a-z and digits only",
        ))
    }
}

/// A string, a boolean, or an integer within 32 bits (the CloudEvents type system).
pub(crate) fn extension_value(name: &str, value: &serde_json::Value) -> Result<(), CeError> {
    use serde_json::Value;
    match value {
        Value::String(_) | Value::Bool(_) => Ok(()),
        Value::Number(n) if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) => Ok(()),
        Value::Number(_) => Err(CeError::new(
            name,
            "an integer attribute must fit in 32 bits",
        )),
        _ => Err(CeError::new(
            name,
            "an extension is a string, a boolean or an integer",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        let s = crate::StreamId::parse("sub-t/x").unwrap();
        Event::new(
            "/shop",
            "com.example.x",
            s,
            crate::TenantId::new("t").unwrap(),
            Default::default(),
        )
    }

    #[test]
    fn control_characters_are_refused_in_every_attribute() {
        type Set = fn(&mut Event, String);
        let set: [(&str, Set); 6] = [
            ("id", |e, v| e.id = v),
            ("source", |e, v| e.source = v),
            ("type", |e, v| e.ty = v),
            ("subject", |e, v| e.subject = Some(v)),
            ("correlationid", |e, v| e.correlationid = Some(v)),
            ("traceparent", |e, v| e.traceparent = Some(v)),
        ];
        for (name, put) in set {
            for bad in ["poison\n1", "a\r\nb: c", "nul\0", "tab\tx", "del\u{7f}"] {
                let mut e = event();
                put(&mut e, bad.into());
                let err = validate(&e).expect_err(bad);
                assert_eq!(err.attribute, name, "{bad:?}");
                assert!(err.reason.contains("control character"), "{err}");
            }
        }
        let mut e = event();
        e.extensions.insert("ext".into(), "x\ny".into());
        assert_eq!(validate(&e).unwrap_err().attribute, "ext");
    }

    #[test]
    fn attributes_have_lengths() {
        let mut e = event();
        e.ty = "t".repeat(MAX_TYPE_BYTES + 1);
        assert_eq!(validate(&e).unwrap_err().attribute, "type");
        e.ty = "t".repeat(MAX_TYPE_BYTES);
        assert!(validate(&e).is_ok());
        e.id = "i".repeat(MAX_ID_BYTES + 1);
        assert_eq!(validate(&e).unwrap_err().attribute, "id");
        let mut e = event();
        e.extensions
            .insert("ext".into(), "v".repeat(MAX_ATTRIBUTE_BYTES + 1).into());
        assert_eq!(validate(&e).unwrap_err().attribute, "ext");
        let mut e = event();
        for i in 0..=MAX_EXTENSIONS {
            e.extensions.insert(format!("x{i}"), true.into());
        }
        assert!(validate(&e).is_err());
    }

    #[test]
    fn media_types_follow_rfc_2046() {
        for ok in [
            "text/plain",
            "application/cloudevents+json",
            "text/plain; charset=utf-8",
            "a/b;x=\"y z\"",
        ] {
            assert!(content_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "xyz",
            "",
            "text/",
            "/plain",
            "text/plain; charset",
            "te xt/plain",
        ] {
            assert!(content_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_need_seconds_and_a_valid_offset() {
        assert!(time("2018-04-05T17:31:00Z").is_ok());
        assert!(time("2018-04-05T17:31:00.123456789+01:00").is_ok());
        for bad in [
            "lunchtime",
            "2018-04-05T18:31Z",
            "2018-04-05T18:31:00X",
            "2018-04-05T18:31:00+25:00",
            "2018-04-05T18:31:00+05",
            // Valid as written, but not in UTC, where it is stored and sent.
            "9999-12-31T23:59:59-01:00",
            "0000-01-01T00:00:00+01:00",
        ] {
            assert!(time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attributes_with_whitespace_at_either_end_are_refused() {
        for bad in [" 1", "1 ", " ", "\u{a0}x"] {
            let e = header_safe("id", bad, 100).unwrap_err();
            assert_eq!(e.attribute, "id");
        }
        assert!(header_safe("id", "a b", 100).is_ok(), "inside is fine");
    }

    #[test]
    fn extensions_are_named_and_typed_as_the_spec_says() {
        assert!(extension_name("ext1").is_ok());
        for bad in ["MyExtension", "my.extension", "my_ext", ""] {
            assert!(extension_name(bad).is_err(), "{bad}");
        }
        use serde_json::json;
        assert!(extension_value("x", &json!(10)).is_ok());
        assert!(extension_value("x", &json!(true)).is_ok());
        for bad in [json!(1.5), json!(1i64 << 40), json!({"a": 1}), json!([1])] {
            assert!(extension_value("x", &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type(None));
        assert!(is_json_content_type(Some(
            "application/json; charset=utf-8"
        )));
        assert!(is_json_content_type(Some("application/cloudevents+json")));
        assert!(!is_json_content_type(Some("text/plain")));
    }
}
