//! HTTP binary mode: attributes in `ce-` headers (percent-encoded), the data as the body and its
//! content type as `datacontenttype`.

use bytes::Bytes;

use super::CeError;
use super::rules;
use crate::{Event, TenantId};

/// An event from binary-mode attributes (names without the `ce-` prefix, lowercase; values
/// decoded), the request's content type and its body.
pub fn parse_binary<'a>(
    attributes: impl IntoIterator<Item = (&'a str, &'a str)>,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Event, CeError> {
    let mut e = Event::empty();
    e.datacontenttype = content_type.map(str::to_owned);
    let (mut specversion, mut id, mut source, mut ty) = (None, None, None, None);
    for (name, value) in attributes {
        let value = value.to_owned();
        match name {
            "specversion" => specversion = Some(value),
            "id" => id = Some(value),
            "source" => source = Some(value),
            "type" => ty = Some(value),
            "subject" => e.subject = Some(value),
            "time" => e.time = Some(rules::time(&value)?),
            // The content type header wins; a `ce-datacontenttype` only stands in for a missing one.
            "datacontenttype" => {
                e.datacontenttype.get_or_insert(value);
            }
            "dataschema" => e.dataschema = Some(value),
            "tenant" => {
                e.tenant = Some(
                    TenantId::new(value).map_err(|err| CeError::new("tenant", err.to_string()))?,
                )
            }
            "correlationid" => e.correlationid = Some(value),
            "causationid" => e.causationid = Some(value),
            "traceparent" => e.traceparent = Some(value),
            "tracestate" => e.tracestate = Some(value),
            "replayof" => e.replayof = Some(value),
            other => {
                rules::extension_name(other)?;
                e.extensions.insert(other.to_owned(), value.into());
            }
        }
    }
    rules::Required {
        specversion,
        id,
        source,
        ty,
    }
    .fill(&mut e, "ce-")?;
    rules::validate(&e)?;
    // An empty body is no data: binary mode cannot tell "empty" from "absent", and a content type
    // alone says nothing was sent.
    e.data = (!body.is_empty()).then_some(body);
    Ok(e)
}

/// Percent-decodes a `ce-` header value (HTTP binding §3.1.3.2); the result must be UTF-8.
pub fn decode_http_header_value(raw: &str) -> Result<String, CeError> {
    if !raw.contains('%') {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| CeError::new("", format!("bad percent-encoding in {raw:?}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| CeError::new("", format!("{raw:?} decodes to invalid UTF-8")))
}

/// Percent-encodes what a header value may not carry as is: space, `"`, `%`, and anything outside
/// printable ASCII.
pub fn encode_http_header_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_round_trip_through_percent_encoding() {
        for v in ["plain", "with space", "50% \"quoted\"", "été ✓"] {
            let encoded = encode_http_header_value(v);
            assert!(
                encoded.bytes().all(|b| (0x21..=0x7e).contains(&b)),
                "{encoded}"
            );
            assert_eq!(decode_http_header_value(&encoded).unwrap(), v);
        }
        assert!(decode_http_header_value("%zz").is_err());
        assert!(decode_http_header_value("%ff").is_err());
    }

    #[test]
    fn binary_mode_needs_the_required_attributes() {
        let attrs = [
            ("specversion", "1.0"),
            ("id", "1"),
            ("source", "/s"),
            ("type", "t"),
        ];
        let e = parse_binary(attrs, Some("text/plain"), Bytes::from_static(b"hi")).unwrap();
        assert_eq!(e.datacontenttype.as_deref(), Some("text/plain"));
        assert_eq!(e.data.as_deref(), Some(&b"hi"[..]));
        let e = parse_binary(attrs, Some("text/plain"), Bytes::new()).unwrap();
        assert_eq!(e.data, None);
        assert_eq!(
            parse_binary(attrs[1..].iter().copied(), None, Bytes::new())
                .unwrap_err()
                .attribute,
            "specversion"
        );
        let bad = [
            ("specversion", "1.0"),
            ("id", "1"),
            ("source", "/s"),
            ("type", "t"),
            ("Bad", "x"),
        ];
        assert!(parse_binary(bad, None, Bytes::new()).is_err());
    }
}
