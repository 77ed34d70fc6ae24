//! The schemas agree with the Rust types and with the list of event types. Agreement matters both
//! ways: ingest checks a raw CloudEvent against the schema alone, and every consumer then reads it
//! with the Rust type, so data the schema admits and serde refuses would be a poison event.

use quorum_domain::query::{QuerySubmitted, Strategy, ToolPolicy};
use quorum_domain::types;
use quorum_schemas::Schemas;
use serde_json::{Value, json};

/// The verdict of serde and `validate()`: `Err` with the field at fault (empty for shape errors).
fn rust(doc: &Value) -> Result<(), String> {
    let q: QuerySubmitted = serde_json::from_value(doc.clone()).map_err(|_| String::new())?;
    q.validate().map_err(|e| e.field)
}

fn schema(schemas: &Schemas, doc: &Value) -> Result<(), String> {
    schemas
        .validate(types::QUERY_SUBMITTED, doc.to_string().as_bytes())
        .map_err(|e| e.pointer)
}

fn query(question: &str) -> QuerySubmitted {
    serde_json::from_value(json!({ "question": question })).unwrap()
}

#[test]
fn what_rust_writes_the_schema_accepts() {
    let schemas = Schemas::new();
    let mut all = query("Which is larger, 2^10 or 10^3?");
    all.context = Some(json!({"doc": [1, 2], "lang": "en"}));
    all.experts = Some(vec!["gpt-4o".into(), "claude_3".into(), "local-1".into()]);
    all.quorum = Some(2);
    all.deadline_ms = 600_000;
    all.strategy = Strategy::Judge;
    all.tool_policy = Some(ToolPolicy {
        allowed: true,
        tools: Some(vec!["http".into(), "mcp:time/*".into()]),
        max_steps: Some(5),
    });
    let mut similar = query("¿Por qué?\u{3000}");
    similar.strategy = Strategy::Similarity;
    similar.deadline_ms = 100;
    similar.tool_policy = Some(ToolPolicy::default());
    similar.context = Some(json!("a plain string"));
    let longest = query(&"x".repeat(32 * 1024));
    for q in [query("Why?"), all, similar, longest] {
        q.validate().expect("a valid query");
        let written = serde_json::to_vec(&q).unwrap();
        if let Err(e) = schemas.validate(types::QUERY_SUBMITTED, &written) {
            panic!("{e}: {}", String::from_utf8_lossy(&written));
        }
        // And it reads back as it was.
        assert_eq!(
            serde_json::from_slice::<QuerySubmitted>(&written).unwrap(),
            q
        );
    }
}

#[test]
fn the_query_schema_and_the_rust_type_give_the_same_verdict() {
    let schemas = Schemas::new();
    let q = |extra: Value| {
        let mut doc = json!({"question": "q"});
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        doc
    };
    let valid = [
        json!({"question": "Is it?"}),
        q(
            json!({"experts": ["a", "b-2", "c_3"], "quorum": 2, "deadline_ms": 1000,
                 "strategy": "judge", "context": {"doc": [1, 2]},
                 "tool_policy": {"allowed": true, "max_steps": 3}}),
        ),
        q(json!({"context": null, "experts": null, "quorum": null, "tool_policy": null})),
        q(json!({"tool_policy": {}, "strategy": "similarity"})),
        q(json!({"tool_policy": {"max_steps": null}})),
        q(json!({"tool_policy": {"allowed": true, "tools": ["http", "mcp:*"]}})),
        q(json!({"tool_policy": {"tools": null}})),
        q(json!({"deadline_ms": 1000.0, "quorum": 1.0})),
        q(json!({"deadline_ms": 100})),
        q(json!({"deadline_ms": 600000})),
        q(json!({"decide": "quorum", "tolerance": 0.01})),
        q(json!({"decide": "all", "tolerance": 0})),
        q(json!({"decide": null, "tolerance": null, "strategy": "judge"})),
        q(json!({"tolerance": 1})),
        q(json!({"quorum": 4294967295_u64})),
        q(json!({"experts": ["a".repeat(64)]})),
        json!({"question": " \u{feff} "}),
        json!({"question": "\u{200b}"}),
        json!({"question": "x".repeat(32 * 1024)}),
    ];
    let invalid = [
        json!({"question": ""}),
        json!({"question": " \t\n\r"}),
        json!({"question": "\u{3000}\u{a0}\u{85}\u{2028}\u{b}"}),
        json!({"question": "x".repeat(32 * 1024 + 1)}),
        json!({"question": 3}),
        json!({"question": null}),
        json!({"experts": ["a"]}),
        json!([]),
        json!("q"),
        q(json!({"extra": 1})),
        q(json!({"deadline_ms": 5})),
        q(json!({"deadline_ms": 99})),
        q(json!({"deadline_ms": 600001})),
        q(json!({"deadline_ms": 1000.5})),
        q(json!({"deadline_ms": -1000})),
        q(json!({"deadline_ms": null})),
        q(json!({"deadline_ms": "1000"})),
        q(json!({"quorum": 0})),
        q(json!({"quorum": -1})),
        q(json!({"quorum": 4294967296_u64})),
        q(json!({"quorum": 1.5})),
        q(json!({"experts": []})),
        q(json!({"experts": ["Bad Name"]})),
        q(json!({"experts": ["A"]})),
        q(json!({"experts": [""]})),
        q(json!({"experts": ["a\n"]})),
        q(json!({"experts": ["é"]})),
        q(json!({"experts": ["a".repeat(65)]})),
        q(json!({"experts": ["a", "a"]})),
        q(json!({"experts": "a"})),
        q(json!({"experts": [1]})),
        q(json!({"strategy": "vote"})),
        q(json!({"strategy": "Majority"})),
        q(json!({"strategy": null})),
        q(json!({"decide": "soon"})),
        q(json!({"decide": "Quorum"})),
        q(json!({"tolerance": 1.5})),
        q(json!({"tolerance": -0.01})),
        q(json!({"tolerance": "0.1"})),
        q(json!({"tool_policy": {"allowed": "yes"}})),
        q(json!({"tool_policy": {"allowed": null}})),
        q(json!({"tool_policy": {"steps": 3}})),
        q(json!({"tool_policy": {"max_steps": -1}})),
        q(json!({"tool_policy": true})),
        q(json!({"tool_policy": {"tools": "http"}})),
        q(json!({"tool_policy": {"tools": [""]}})),
        q(json!({"tool_policy": {"tools": [1]}})),
    ];
    for doc in &valid {
        assert_eq!(rust(doc), Ok(()), "Rust refuses {doc}");
        assert_eq!(schema(&schemas, doc), Ok(()), "the schema refuses {doc}");
    }
    for doc in &invalid {
        assert!(rust(doc).is_err(), "Rust accepts {doc}");
        assert!(schema(&schemas, doc).is_err(), "the schema accepts {doc}");
    }
}

/// The two rules a schema cannot state (see the schema's description): the type is stricter, never
/// laxer, so everything it accepts the schema accepts too.
#[test]
fn only_the_type_counts_bytes_and_compares_quorum_with_experts() {
    let schemas = Schemas::new();
    for doc in [
        json!({"question": "é".repeat(32 * 1024 / 2 + 1)}),
        json!({"question": "q", "experts": ["a"], "quorum": 2}),
    ] {
        assert!(rust(&doc).is_err(), "Rust accepts {doc}");
        assert_eq!(schema(&schemas, &doc), Ok(()), "the schema refuses {doc}");
    }
}

#[test]
fn the_schema_and_the_type_point_at_the_same_field() {
    let schemas = Schemas::new();
    for (doc, pointer, field) in [
        (json!({"question": ""}), "/question", Some("question")),
        (
            json!({"question": "q", "deadline_ms": 5}),
            "/deadline_ms",
            Some("deadline_ms"),
        ),
        (
            json!({"question": "q", "quorum": 0}),
            "/quorum",
            Some("quorum"),
        ),
        (
            json!({"question": "q", "experts": []}),
            "/experts",
            Some("experts"),
        ),
        (
            json!({"question": "q", "experts": ["ok", "Bad"]}),
            "/experts/1",
            Some("experts/1"),
        ),
        // uniqueItems is about the array; the type can name the repeat.
        (
            json!({"question": "q", "experts": ["a", "a"]}),
            "/experts",
            Some("experts/1"),
        ),
        (json!({"question": "q", "extra": 1}), "/extra", None),
        (
            json!({"question": "q", "tool_policy": {"n/~": 1}}),
            "/tool_policy/n~1~0",
            None,
        ),
        (
            json!({"question": "q", "tool_policy": {"max_steps": -1}}),
            "/tool_policy/max_steps",
            None,
        ),
        (
            json!({"question": "q", "strategy": "vote"}),
            "/strategy",
            None,
        ),
        (json!({"experts": ["a"]}), "/question", None),
        (json!([]), "", None),
    ] {
        assert_eq!(schema(&schemas, &doc), Err(pointer.to_owned()), "{doc}");
        let field = field.unwrap_or_default().to_owned();
        assert_eq!(rust(&doc), Err(field), "{doc}");
    }
    let e = schemas
        .validate(types::QUERY_SUBMITTED, b"{\"question\":")
        .unwrap_err();
    assert_eq!(
        (e.event_type.as_str(), e.pointer.as_str()),
        (types::QUERY_SUBMITTED, "")
    );
    // A type without a schema passes whatever its data.
    assert!(
        schemas
            .validate("com.example.unknown", b"not even json")
            .is_ok()
    );
}

#[test]
fn every_schema_file_names_an_event_type_quorum_defines() {
    // Kept in step with quorum_domain::types by hand: a constant removed there fails to compile
    // here, and a schema for a type added there fails below until it is listed.
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
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let ty = name
            .strip_suffix(".json")
            .unwrap_or_else(|| panic!("{name}: only <event type>.json belongs in schemas/"));
        assert!(
            known.contains(&ty),
            "{name} is not a type in quorum_domain::types"
        );
        assert!(schemas.has(ty), "{name} is not embedded in quorum-schemas");
        files += 1;
    }
    assert_eq!(
        schemas.types().count(),
        files,
        "an embedded schema has no file"
    );
    // The types whose data the domain defines and that have a schema so far.
    assert!(schemas.has(types::QUERY_SUBMITTED));
}
