//! The JSON Schemas of Quorum's own event types, embedded from `schemas/` and compiled once.
//!
//! No schema is ever fetched: every schema is embedded at build time, and the validator has no
//! retriever for anything else, so a `$ref` to a URL fails when the schema is compiled (in a test)
//! instead of reaching out at run time.

use std::collections::HashMap;

/// Every schema, by the event type it describes (the file name without `.json`).
const SOURCES: &[(&str, &str)] = &[(
    "quorum.query.submitted",
    include_str!("../../../schemas/quorum.query.submitted.json"),
)];

/// Data that does not match its type's schema: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} data at {pointer}: {message}", pointer = if pointer.is_empty() { "/" } else { pointer })]
pub struct SchemaError {
    pub event_type: String,
    /// JSON pointer of the first value at fault (`/deadline_ms`), empty for the whole document.
    pub pointer: String,
    pub message: String,
}

/// The compiled schemas. Build once and share.
pub struct Schemas {
    validators: HashMap<&'static str, jsonschema::Validator>,
}

impl Default for Schemas {
    fn default() -> Self {
        Self::new()
    }
}

impl Schemas {
    /// Compiles every embedded schema. Panics on a schema that does not compile: that is a build
    /// defect, caught by this crate's tests.
    pub fn new() -> Self {
        let validators = SOURCES
            .iter()
            .map(|(ty, text)| {
                (
                    *ty,
                    compile(text).unwrap_or_else(|e| panic!("schema {ty}: {e}")),
                )
            })
            .collect();
        Self { validators }
    }

    /// The event types that have a schema.
    pub fn types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.validators.keys().copied()
    }

    pub fn has(&self, event_type: &str) -> bool {
        self.validators.contains_key(event_type)
    }

    /// Checks `data` (JSON bytes) against `event_type`'s schema; types without one pass.
    pub fn validate(&self, event_type: &str, data: &[u8]) -> Result<(), SchemaError> {
        let Some(validator) = self.validators.get(event_type) else {
            return Ok(());
        };
        let fail = |pointer: String, message: String| SchemaError {
            event_type: event_type.to_owned(),
            pointer,
            message,
        };
        let value: serde_json::Value = serde_json::from_slice(data)
            .map_err(|e| fail(String::new(), format!("not JSON: {e}")))?;
        match validator.iter_errors(&value).next() {
            None => Ok(()),
            Some(e) => Err(fail(e.instance_path().to_string(), e.to_string())),
        }
    }
}

/// Compiles a schema with no way to fetch anything: no HTTP or file retriever is built in (the
/// crate's default features are off) and none is given.
fn compile(text: &str) -> Result<jsonschema::Validator, String> {
    let schema: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_ref_is_refused_not_fetched() {
        let remote = r#"{"$ref": "https://example.com/never-fetched.json"}"#;
        assert!(compile(remote).is_err());
    }

    #[test]
    fn errors_point_at_the_field() {
        let s = Schemas::new();
        let e = s
            .validate(
                "quorum.query.submitted",
                br#"{"question":"q","deadline_ms":5}"#,
            )
            .unwrap_err();
        assert_eq!(e.pointer, "/deadline_ms");
        assert!(s.validate("com.example.unknown", b"not even json").is_ok());
        assert!(s.validate("quorum.query.submitted", b"{").is_err());
    }
}
