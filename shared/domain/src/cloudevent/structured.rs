//! The JSON event format: one event (`application/cloudevents+json`) or a batch
//! (`application/cloudevents-batch+json`), parsed in one pass over the document. `data` keeps the
//! exact text it was sent as: the store keeps the bytes received.

use std::collections::HashMap;

use base64::Engine;
use bytes::Bytes;
use serde_json::value::RawValue;

use super::CeError;
use super::rules;
use crate::{Event, TenantId};

/// One event in the JSON format.
pub fn parse_structured(json: &[u8]) -> Result<Event, CeError> {
    let members: HashMap<String, &RawValue> = serde_json::from_slice(json)
        .map_err(|e| CeError::new("", format!("not a JSON CloudEvent object: {e}")))?;
    from_members(members)
}

/// A batch: a JSON array of events, all valid or the batch is refused (the error names the
/// event's index). An empty array is a valid, empty batch.
pub fn parse_batch(json: &[u8]) -> Result<Vec<Event>, CeError> {
    let items: Vec<&RawValue> = serde_json::from_slice(json)
        .map_err(|e| CeError::new("", format!("not a JSON array of CloudEvents: {e}")))?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let at = |e: CeError| CeError {
                index: Some(i),
                ..e
            };
            let members: HashMap<String, &RawValue> = serde_json::from_str(raw.get())
                .map_err(|e| at(CeError::new("", format!("not a CloudEvent object: {e}"))))?;
            from_members(members).map_err(at)
        })
        .collect()
}

fn from_members(members: HashMap<String, &RawValue>) -> Result<Event, CeError> {
    let mut e = Event::empty();
    let (mut specversion, mut id, mut source, mut ty) = (None, None, None, None);
    let (mut data, mut data_base64) = (None, None);
    for (name, raw) in members {
        let is_null = raw.get() == "null";
        match name.as_str() {
            "data" => data = (!is_null).then_some(raw),
            "data_base64" => data_base64 = (!is_null).then_some(raw),
            "specversion" => specversion = string(&name, raw)?,
            "id" => id = string(&name, raw)?,
            "source" => source = string(&name, raw)?,
            "type" => ty = string(&name, raw)?,
            "subject" => e.subject = string(&name, raw)?,
            "time" => e.time = string(&name, raw)?.map(|t| rules::time(&t)).transpose()?,
            "datacontenttype" => e.datacontenttype = string(&name, raw)?,
            "dataschema" => e.dataschema = string(&name, raw)?,
            "tenant" => {
                e.tenant = string(&name, raw)?
                    .map(|t| {
                        TenantId::new(t).map_err(|err| CeError::new("tenant", err.to_string()))
                    })
                    .transpose()?
            }
            "correlationid" => e.correlationid = string(&name, raw)?,
            "causationid" => e.causationid = string(&name, raw)?,
            "traceparent" => e.traceparent = string(&name, raw)?,
            "tracestate" => e.tracestate = string(&name, raw)?,
            "replayof" => e.replayof = string(&name, raw)?,
            _ => {
                rules::extension_name(&name)?;
                let value: serde_json::Value = serde_json::from_str(raw.get())
                    .map_err(|err| CeError::new(name.as_str(), err.to_string()))?;
                if !value.is_null() {
                    rules::extension_value(&name, &value)?;
                    e.extensions.insert(name, value);
                }
            }
        }
    }
    rules::Required {
        specversion,
        id,
        source,
        ty,
    }
    .fill(&mut e, "")?;
    rules::validate(&e)?;
    e.data = match (data, data_base64) {
        (Some(_), Some(_)) => {
            return Err(CeError::new(
                "data",
                "data and data_base64 are mutually exclusive",
            ));
        }
        (None, Some(raw)) => {
            let text: String = serde_json::from_str(raw.get())
                .map_err(|_| CeError::new("data_base64", "must be a string"))?;
            Some(Bytes::from(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|err| CeError::new("data_base64", format!("not base64: {err}")))?,
            ))
        }
        (Some(raw), None) if rules::is_json_content_type(e.datacontenttype.as_deref()) => {
            Some(Bytes::copy_from_slice(raw.get().as_bytes()))
        }
        (Some(raw), None) => Some(match serde_json::from_str::<String>(raw.get()) {
            Ok(text) => Bytes::from(text),
            Err(_) => Bytes::copy_from_slice(raw.get().as_bytes()),
        }),
        (None, None) => None,
    };
    Ok(e)
}

/// A string attribute: `None` when absent or null, an error for any other JSON type.
fn string(name: &str, raw: &RawValue) -> Result<Option<String>, CeError> {
    serde_json::from_str::<Option<String>>(raw.get())
        .map_err(|_| CeError::new(name, format!("must be a string, not {}", raw.get())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keeps_its_exact_text() {
        let e = parse_structured(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data": {"b" : 2,"a":1}}"#,
        )
        .unwrap();
        assert_eq!(e.data.as_deref(), Some(&br#"{"b" : 2,"a":1}"#[..]));
        let text = parse_structured(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi\n"}"#,
        )
        .unwrap();
        assert_eq!(text.data.as_deref(), Some(&b"hi\n"[..]));
        let b64 = parse_structured(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data_base64":"TWE="}"#,
        )
        .unwrap();
        assert_eq!(b64.data.as_deref(), Some(&b"Ma"[..]));
    }

    #[test]
    fn errors_name_the_attribute_and_the_batch_index() {
        let e = parse_structured(br#"{"specversion":"1.0","id":25,"source":"/s","type":"t"}"#)
            .unwrap_err();
        assert_eq!(e.attribute, "id");
        let e = parse_batch(
            br#"[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0","id":"2","source":"/s","type":"t","time":"noon"}]"#,
        )
        .unwrap_err();
        assert_eq!((e.index, e.attribute.as_str()), (Some(1), "time"));
        assert!(parse_batch(b"[]").unwrap().is_empty());
        assert_eq!(parse_batch(br#"["x"]"#).unwrap_err().index, Some(0));
    }

    #[test]
    fn known_extensions_are_typed_and_others_kept() {
        let e = parse_structured(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","tenant":"acme","correlationid":"c","n":3,"flag":true}"#,
        )
        .unwrap();
        assert_eq!(e.tenant.unwrap().as_str(), "acme");
        assert_eq!(e.correlationid.as_deref(), Some("c"));
        assert_eq!(e.extensions["n"], 3);
        assert!(
            parse_structured(
                br#"{"specversion":"1.0","id":"1","source":"/s","type":"t","tenant":"A B"}"#
            )
            .is_err()
        );
    }
}
