//! Property tests of what a hostile publisher can send: every way in (the three HTTP modes and a
//! NATS message) refuses or accepts without panicking, and every event that any of them accepts
//! encodes to a message the NATS server takes (no header it refuses; the size counted as the
//! server counts it). The regression cases proptest finds are kept beside this file.

use bytes::Bytes;
use proptest::prelude::*;
use quorum_bus::{check_size, decode, encode_checked, message_len};
use quorum_domain::cloudevent::{parse_batch, parse_binary, parse_structured};

/// Strings as a hostile publisher writes them: mostly plain, often with control characters,
/// line breaks, NULs, percent signs and non-ASCII.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9./:-]{1,40}",
        "\\PC{0,40}",
        ".{0,20}[\r\n\u{0}\t\u{7f}].{0,20}",
        "(%0A|%0D|%00|%25|[a-z]){1,30}",
    ]
}

/// Attribute names a binary request or NATS message may carry, known and unknown.
fn attribute_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("specversion".to_owned()),
        Just("id".to_owned()),
        Just("source".to_owned()),
        Just("type".to_owned()),
        Just("subject".to_owned()),
        Just("time".to_owned()),
        Just("correlationid".to_owned()),
        Just("traceparent".to_owned()),
        "[a-z0-9]{1,24}",
    ]
}

/// An accepted event must travel: its headers are all ones NATS takes, and its size is what the
/// server counts.
fn travels(event: &quorum_domain::Event) -> Result<(), TestCaseError> {
    let (headers, payload) = encode_checked(event)
        .map_err(|e| TestCaseError::fail(format!("accepted but unpublishable: {e}")))?;
    let len = message_len(&headers, payload.len());
    prop_assert!(check_size(&headers, payload.len(), len).is_ok());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn binary_mode_accepts_only_what_travels(
        attributes in prop::collection::vec((attribute_name(), hostile_text()), 0..8),
        required in prop::collection::vec(hostile_text(), 3),
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut all: Vec<(String, String)> = vec![
            ("specversion".into(), "1.0".into()),
            ("id".into(), required[0].clone()),
            ("source".into(), required[1].clone()),
            ("type".into(), required[2].clone()),
        ];
        all.extend(attributes);
        // Values arrive percent-encoded in HTTP headers; decode as ingest does.
        let decoded: Vec<(String, String)> = all
            .into_iter()
            .filter_map(|(n, v)| {
                quorum_domain::cloudevent::decode_http_header_value(&v).ok().map(|v| (n, v))
            })
            .collect();
        let parsed = parse_binary(
            decoded.iter().map(|(n, v)| (n.as_str(), v.as_str())),
            Some("application/json"),
            Bytes::from(body),
        );
        if let Ok(event) = parsed {
            travels(&event)?;
        }
    }

    #[test]
    fn structured_and_batch_modes_accept_only_what_travels(
        id in hostile_text(),
        source in hostile_text(),
        ty in hostile_text(),
        ext in hostile_text(),
        raw in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let doc = serde_json::json!({
            "specversion": "1.0", "id": id, "source": source, "type": ty, "ext": ext,
            "data": {"n": 1}
        });
        if let Ok(event) = parse_structured(doc.to_string().as_bytes()) {
            travels(&event)?;
        }
        if let Ok(events) = parse_batch(serde_json::json!([doc]).to_string().as_bytes()) {
            for e in &events {
                travels(e)?;
            }
        }
        // Arbitrary bytes are refused or accepted, never a panic.
        let _ = parse_structured(&raw);
        let _ = parse_batch(&raw);
    }

    #[test]
    fn a_nats_message_decodes_only_to_what_travels(
        attributes in prop::collection::vec((attribute_name(), "[ -~]{0,30}"), 0..8),
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("ce-specversion", "1.0");
        for (name, value) in &attributes {
            headers.insert(format!("ce-{name}").as_str(), value.as_str());
        }
        if let Ok(event) = decode(Some(&headers), &Bytes::from(payload.clone())) {
            travels(&event)?;
        }
        if let Ok(event) = decode(None, &Bytes::from(payload)) {
            travels(&event)?;
        }
    }
}
