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
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            CeError::new(
                "time",
                format!("not an RFC 3339 timestamp ({value:?}): {e}"),
            )
        })
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
        ] {
            assert!(time(bad).is_err(), "{bad}");
        }
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
