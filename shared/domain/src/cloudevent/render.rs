//! Rendering a stored event back in the JSON event format.

use base64::Engine;
use serde_json::Value;

use super::rules::is_json_content_type;
use crate::Event;

/// The event as a JSON CloudEvent: every attribute, and the data as JSON when it is JSON, as a string
/// when it is text of another type, else as `data_base64`.
pub fn to_structured(event: &Event) -> Value {
    let mut value = event.attributes_json();
    let Some(data) = &event.data else {
        return value;
    };
    let json = is_json_content_type(event.datacontenttype.as_deref());
    let member = match (json, std::str::from_utf8(data)) {
        (true, Ok(text)) => match serde_json::from_str::<Value>(text) {
            Ok(v) => ("data", v),
            Err(_) => base64(data),
        },
        (false, Ok(text)) => ("data", Value::String(text.to_owned())),
        (_, Err(_)) => base64(data),
    };
    if let Some(map) = value.as_object_mut() {
        map.insert(member.0.to_owned(), member.1);
    }
    value
}

fn base64(data: &[u8]) -> (&'static str, Value) {
    (
        "data_base64",
        Value::String(base64::engine::general_purpose::STANDARD.encode(data)),
    )
}

#[cfg(test)]
mod tests {
    use super::super::parse_structured;
    use super::*;

    #[test]
    fn data_renders_as_it_came() {
        for doc in [
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","data":{"a":[1,2]}}"#,
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"text/plain","data":"hi"}"#,
            r#"{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/octet-stream","data_base64":"AP8="}"#,
        ] {
            let sent: Value = serde_json::from_str(doc).unwrap();
            let back = to_structured(&parse_structured(doc.as_bytes()).unwrap());
            assert_eq!(back, sent, "{doc}");
        }
    }
}
