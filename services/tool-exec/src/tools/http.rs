//! The `http` tool: `{method, url, headers?, body?}` to a host on the allowlist, with the step's
//! idempotency key as `Idempotency-Key`. 2xx succeeds; connect errors, timeouts, 429 and 5xx are
//! retryable; any other status fails the step for good. A host off the allowlist is refused before
//! anything is sent.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Call, ToolError};
use crate::config::HttpToolConfig;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    method: String,
    url: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<Value>,
}

pub(super) struct HttpTool {
    client: reqwest::Client,
    allowed: Vec<String>,
    max_body: usize,
}

impl HttpTool {
    pub(super) fn new(config: &HttpToolConfig) -> Self {
        Self {
            // No redirects: a redirect could lead off the allowlist.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("a client with no TLS configuration builds"),
            allowed: config
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            max_body: config.max_response_bytes,
        }
    }

    fn check_host(&self, url: &url::Url) -> Result<(), ToolError> {
        let host = url
            .host_str()
            .ok_or_else(|| ToolError::refused("the url has no host"))?
            .to_ascii_lowercase();
        let with_port = url.port().map(|p| format!("{host}:{p}"));
        let ok = self
            .allowed
            .iter()
            .any(|a| *a == host || Some(a) == with_port.as_ref());
        if ok {
            Ok(())
        } else {
            Err(ToolError::refused(format!(
                "host {host} is not on the http allowlist"
            )))
        }
    }

    pub(super) async fn call(&self, c: &Call<'_>) -> Result<Value, ToolError> {
        let args: Args = serde_json::from_value(c.call.args.clone())
            .map_err(|e| ToolError::refused(format!("http arguments: {e}")))?;
        let url = url::Url::parse(&args.url)
            .map_err(|e| ToolError::refused(format!("url {:?}: {e}", args.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ToolError::refused(format!(
                "scheme {} is not http(s)",
                url.scheme()
            )));
        }
        self.check_host(&url)?;
        let method = reqwest::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ToolError::refused(format!("method {:?}", args.method)))?;
        let mut request = self
            .client
            .request(method, url)
            .header("Idempotency-Key", c.idempotency_key);
        for (name, value) in &args.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &args.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            ToolError::transient(format!("http request: {}", quorum_runtime::error_chain(&e)))
        })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ToolError::transient(format!("http response body: {e}")))?;
        let kept = &bytes[..bytes.len().min(self.max_body)];
        let body = match std::str::from_utf8(kept) {
            Ok(text) => json!({ "text": text }),
            Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(kept) }),
        };
        let output = json!({
            "status": status.as_u16(),
            "body": body,
            "truncated": bytes.len() > kept.len(),
        });
        if status.is_success() {
            Ok(output)
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(ToolError::transient(format!(
                "http status {status}: {output}"
            )))
        } else {
            Err(ToolError::refused(format!(
                "http status {status}: {output}"
            )))
        }
    }
}
