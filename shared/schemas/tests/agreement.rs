//! The schemas agree with the Rust types and with the list of event types.

use quorum_domain::query::QuerySubmitted;
use quorum_domain::types;
use quorum_schemas::Schemas;
use serde_json::json;

#[test]
fn the_query_schema_and_the_rust_type_give_the_same_verdict() {
    let schemas = Schemas::new();
    let valid = [
        json!({"question": "Is it?"}),
        json!({"question": "Is it?", "experts": ["a", "b-2"], "quorum": 2, "deadline_ms": 1000,
               "strategy": "judge", "context": {"doc": [1, 2]}, "tool_policy": {"allowed": true, "max_steps": 3}}),
    ];
    for doc in &valid {
        let q: QuerySubmitted = serde_json::from_value(doc.clone()).expect("serde accepts");
        q.validate().expect("rules accept");
        // And what Rust writes back validates too (defaults filled in).
        let written = serde_json::to_vec(&q).unwrap();
        schemas
            .validate(types::QUERY_SUBMITTED, &written)
            .expect("schema accepts");
        schemas
            .validate(types::QUERY_SUBMITTED, doc.to_string().as_bytes())
            .expect("schema accepts");
    }
    let invalid = [
        json!({"question": ""}),
        json!({"question": "q", "extra": 1}),
        json!({"question": "q", "deadline_ms": 5}),
        json!({"question": "q", "quorum": 0}),
        json!({"question": "q", "experts": ["Bad Name"]}),
        json!({"question": "q", "experts": ["a", "a"]}),
        json!({"question": "q", "experts": []}),
        json!({"question": "q", "strategy": "vote"}),
        json!({"experts": ["a"]}),
        json!({"question": 3}),
    ];
    for doc in &invalid {
        let rust = serde_json::from_value::<QuerySubmitted>(doc.clone())
            .map_err(|e| e.to_string())
            .and_then(|q| q.validate().map_err(|e| e.to_string()));
        let schema = schemas.validate(types::QUERY_SUBMITTED, doc.to_string().as_bytes());
        assert!(rust.is_err(), "Rust accepts {doc}");
        assert!(schema.is_err(), "the schema accepts {doc}");
    }
}

#[test]
fn every_schema_names_an_event_type_quorum_defines() {
    let known = [
        types::QUERY_SUBMITTED,
        types::EXPERT_RESPONDED,
        types::EXPERT_FAILED,
        types::CONSENSUS_REACHED,
        types::CONSENSUS_FAILED,
        types::DLQ_PARKED,
        types::DLQ_REPLAYED,
        types::DLQ_DISCARDED,
        types::AUDIT_CHECKPOINT,
    ];
    let schemas = Schemas::new();
    for ty in schemas.types() {
        assert!(known.contains(&ty), "schema for unknown type {ty}");
    }
    // Every file in schemas/ is embedded (a new file must be added to the crate's list).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let ty = name.strip_suffix(".json").expect("only .json files");
        assert!(schemas.has(ty), "{name} is not embedded");
    }
    // The types whose data the domain defines have a schema.
    assert!(schemas.has(types::QUERY_SUBMITTED));
}
