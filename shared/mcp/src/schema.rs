//! Local validation of tool arguments against the tool's advertised `inputSchema`.

use jsonschema::error::ValidationErrorKind;
use serde_json::Value;

/// A compiled input schema, or the reason it could not be compiled.
///
/// A schema that does not compile (malformed, or referring to a remote document we refuse
/// to fetch) makes every call to that tool fail as invalid arguments: sending unchecked
/// arguments would defeat the point of validating, and retrying cannot fix the schema.
pub(crate) struct ArgsSchema(Result<jsonschema::Validator, String>);

impl ArgsSchema {
    pub(crate) fn compile(schema: &Value) -> Self {
        // `offline()`: a tool schema comes from a server we do not control; following its
        // `$ref`s to the network would let it make us fetch arbitrary URLs (and hang).
        // The default draft applies when the schema has no `$schema`, as MCP specifies.
        let built = jsonschema::options()
            .offline()
            .build(schema)
            .map_err(|e| format!("the tool's input schema does not compile: {e}"));
        ArgsSchema(built)
    }

    /// `Err` carries a human-readable reason that starts with the JSON pointer of the
    /// offending field, so an operator can fix the step without reading the schema.
    pub(crate) fn check(&self, args: &Value) -> Result<(), String> {
        let validator = self.0.as_ref().map_err(Clone::clone)?;
        let reasons: Vec<String> = validator.iter_errors(args).map(|e| describe(&e)).collect();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }
}

fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    let mut path = error.instance_path().to_string();
    // A missing property is reported at its parent object; point at the property itself
    // so the path names the field the caller has to add.
    if let ValidationErrorKind::Required { property } = error.kind()
        && let Some(name) = property.as_str()
    {
        path.push('/');
        path.push_str(&name.replace('~', "~0").replace('/', "~1"));
    }
    if path.is_empty() {
        path.push('/');
    }
    format!("at {path}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn echo_schema() -> ArgsSchema {
        ArgsSchema::compile(&json!({
            "type": "object",
            "properties": {"message": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["message"]
        }))
    }

    #[test]
    fn accepts_matching_arguments() {
        assert_eq!(
            echo_schema().check(&json!({"message": "hi", "n": 2})),
            Ok(())
        );
    }

    #[test]
    fn wrong_type_names_the_field() {
        let reason = echo_schema().check(&json!({"message": 42})).unwrap_err();
        assert!(reason.starts_with("at /message: "), "{reason}");
    }

    #[test]
    fn missing_required_names_the_field() {
        let reason = echo_schema().check(&json!({})).unwrap_err();
        assert!(reason.starts_with("at /message: "), "{reason}");
        assert!(reason.contains("required"), "{reason}");
    }

    #[test]
    fn remote_refs_are_not_fetched() {
        let schema = ArgsSchema::compile(&json!({"$ref": "http://127.0.0.1:9/schema.json"}));
        let reason = schema.check(&json!({})).unwrap_err();
        assert!(reason.contains("does not compile"), "{reason}");
    }
}
