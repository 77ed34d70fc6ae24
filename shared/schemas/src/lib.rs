//! The JSON Schemas of Quorum's own event types, embedded from `schemas/` and compiled once.
//!
//! No schema is ever fetched: every schema is embedded at build time and compiled offline, so a
//! `$ref` to anything else fails when the schema is compiled (in this crate's tests) rather than
//! reaching out at run time, whatever features another crate turns on in `jsonschema`.

use std::collections::HashMap;

use jsonschema::error::ValidationErrorKind;

/// Every schema, by the event type it describes (its file name without `.json`). A test fails when
/// a file under `schemas/` is missing here.
const SOURCES: &[(&str, &str)] = &[(
    "quorum.query.submitted",
    include_str!("../../../schemas/quorum.query.submitted.json"),
)];

/// Data that does not match its type's schema: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} data at {pointer}: {message}", pointer = if pointer.is_empty() { "/" } else { pointer })]
pub struct SchemaError {
    /// The event type whose schema refused the data.
    pub event_type: String,
    /// JSON pointer of the first value at fault (`/deadline_ms`); for a field that is missing or
    /// not allowed, the pointer that field would have. Empty for the whole document.
    pub pointer: String,
    /// Why the value was refused.
    pub message: String,
}

/// The compiled schemas. Compiling is slow and validating is not: build once and share (behind an
/// `Arc`, or in a static).
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

    /// Whether `event_type` has a schema, hence whether its data must be JSON.
    pub fn has(&self, event_type: &str) -> bool {
        self.validators.contains_key(event_type)
    }

    /// Checks `data` (JSON bytes) against `event_type`'s schema, reporting the first error; types
    /// without a schema pass.
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
        // Most data is valid, and `is_valid` stops early without building errors.
        if validator.is_valid(&value) {
            return Ok(());
        }
        match validator.validate(&value) {
            Ok(()) => Ok(()),
            Err(e) => Err(fail(pointer_of(&e), e.to_string())),
        }
    }
}

/// The error's instance path, extended by the property a `required` or `additionalProperties`
/// error is about: those point at the object, but the caller wants the field.
fn pointer_of(e: &jsonschema::ValidationError<'_>) -> String {
    let mut pointer = e.instance_path().to_string();
    let property = match e.kind() {
        ValidationErrorKind::Required { property } => property.as_str().map(str::to_owned),
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected.first().cloned(),
        _ => None,
    };
    if let Some(p) = property {
        pointer.push('/');
        pointer.push_str(&p.replace('~', "~0").replace('/', "~1"));
    }
    pointer
}

/// Compiles a schema that can reach nothing outside itself.
fn compile(text: &str) -> Result<jsonschema::Validator, String> {
    let schema: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    jsonschema::options()
        .offline()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;
    use std::net::TcpListener;

    /// Refused with a server listening at the `$ref`, so that the test fails if anything is
    /// fetched, even on a machine without network.
    #[test]
    fn a_remote_ref_is_refused_not_fetched() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let port = server.local_addr().unwrap().port();
        for reference in [
            format!("http://127.0.0.1:{port}/never-fetched.json"),
            "https://example.com/never-fetched.json".to_owned(),
            "file:///etc/hostname".to_owned(),
        ] {
            let schema = format!(r#"{{"$ref": "{reference}"}}"#);
            let e = compile(&schema).expect_err(&reference);
            assert!(e.contains("Retrieval is disabled"), "{reference}: {e}");
        }
        assert_eq!(
            server.accept().map(|_| ()).unwrap_err().kind(),
            ErrorKind::WouldBlock,
            "a schema was fetched"
        );
    }

    #[test]
    fn schemas_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<Schemas>();
    }
}
