//! CloudEvents 1.0 as upstream systems send them: strict parsing of the JSON event format (single
//! events and batches) and of HTTP binary mode, the same rules for an event built otherwise, and
//! rendering back to the JSON format. Every refusal names the attribute at fault.
//!
//! These are the rules of the spec and its conformance vectors; the parse is ours rather than the
//! SDK's so that it enforces all of them and can say which attribute broke which (docs/adr/0008).

mod binary;
mod render;
mod rules;
mod structured;

pub use binary::{decode_http_header_value, encode_http_header_value, parse_binary};
pub use render::to_structured;
pub use rules::{
    MAX_ATTRIBUTE_BYTES, MAX_EXTENSIONS, MAX_ID_BYTES, MAX_SOURCE_BYTES, MAX_SUBJECT_BYTES,
    MAX_TYPE_BYTES, is_json_content_type, validate,
};
pub use structured::{parse_batch, parse_structured};

/// Why a CloudEvent was refused: which attribute (empty for the document as a whole), why, and in
/// a batch, which event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{reason}", index.map(|i| format!("event {i}: ")).unwrap_or_default(), if attribute.is_empty() { String::new() } else { format!("{attribute}: ") })]
pub struct CeError {
    pub index: Option<usize>,
    pub attribute: String,
    pub reason: String,
}

impl CeError {
    pub(crate) fn new(attribute: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            index: None,
            attribute: attribute.into(),
            reason: reason.into(),
        }
    }
}
