//! The `http` tool: `{method, url, headers?, body?}` to a host and port on the allowlist, with the
//! step's idempotency key as `Idempotency-Key`. 2xx succeeds; connect errors, timeouts, 429 and 5xx
//! are retryable; any other status fails the step for good. A host off the allowlist, a reserved
//! header (`Host`, framing) and a name resolving to a non-public address (unless the host is on
//! `private_hosts`) are refused before anything is sent. At most `max_response_bytes` of a body
//! are read.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::http_guard::{self, Guarded, HostPort};
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
    /// For hosts on `allowed_hosts`: connects to public addresses only.
    public: reqwest::Client,
    /// For hosts on `private_hosts`: any address the name resolves to.
    private: reqwest::Client,
    allowed: Vec<HostPort>,
    private_hosts: Vec<HostPort>,
    max_body: usize,
}

/// Headers a plan may not set: the target is the URL's host and nothing else, and the framing
/// and connection handling are the client's (a plan setting them could smuggle a second request);
/// the idempotency key is the saga's.
const RESERVED_HEADERS: [&str; 9] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "idempotency-key",
];

impl HttpTool {
    pub(super) fn new(config: &HttpToolConfig) -> Self {
        let lookup = http_guard::system_lookup();
        let client = |allow_private| {
            quorum_http_client::builder()
                // No redirects: a redirect could lead off the allowlist.
                .redirect(reqwest::redirect::Policy::none())
                // A proxy would resolve the name itself, out of the guard's sight.
                .no_proxy()
                .dns_resolver(Guarded {
                    lookup: lookup.clone(),
                    allow_private,
                })
                .build()
                .expect("a client with no TLS configuration builds")
        };
        // Entries are checked by the config's validation; one that does not parse admits nothing.
        let parse = |list: &[String]| {
            list.iter()
                .filter_map(|h| HostPort::parse(h).ok())
                .collect()
        };
        Self {
            public: client(false),
            private: client(true),
            allowed: parse(&config.allowed_hosts),
            private_hosts: parse(&config.private_hosts),
            max_body: config.max_response_bytes,
        }
    }

    /// The client to reach `url` with, or a refusal when no entry names its host and port.
    ///
    /// An address literal on `allowed_hosts` is taken as written, whatever its address: the
    /// operator named the address itself and no resolution can change it. A hostname there
    /// reaches public addresses only; one on `private_hosts` reaches whatever it resolves to.
    fn client_for(&self, url: &url::Url) -> Result<&reqwest::Client, ToolError> {
        let host = url
            .host_str()
            .ok_or_else(|| ToolError::refused("the url has no host"))?;
        if self.private_hosts.iter().any(|e| e.matches(url)) {
            return Ok(&self.private);
        }
        if self.allowed.iter().any(|e| e.matches(url)) {
            return Ok(&self.public);
        }
        let port = url.port_or_known_default().unwrap_or_default();
        Err(ToolError::refused(format!(
            "host {host} port {port} is not on the http allowlist"
        )))
    }

    fn headers(args: &Args) -> Result<reqwest::header::HeaderMap, ToolError> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &args.headers {
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(ToolError::refused(format!(
                    "a plan cannot set the {name} header: the http tool sets it itself"
                )));
            }
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ToolError::refused(format!("header name {name:?} is invalid")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| ToolError::refused(format!("header {name} has an invalid value")))?;
            headers.append(name, value);
        }
        Ok(headers)
    }

    /// Reads at most `max_body` bytes of the body and whether there was more; the rest is never
    /// read (the connection is dropped with it), so a huge or endless body costs nothing.
    async fn read_capped(
        &self,
        mut response: reqwest::Response,
    ) -> Result<(Vec<u8>, bool), ToolError> {
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| ToolError::transient(format!("http response body: {e}")))?
        {
            let room = self.max_body - body.len();
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                return Ok((body, true));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, false))
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
        let client = self.client_for(&url)?;
        let headers = Self::headers(&args)?;
        let method = reqwest::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| ToolError::refused(format!("method {:?}", args.method)))?;
        let mut request = client
            .request(method, url)
            .headers(headers)
            .header("Idempotency-Key", c.idempotency_key);
        if let Some(body) = &args.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            let message = format!("http request: {}", quorum_runtime::error_chain(&e));
            // An address refused after resolution stays refused on another attempt.
            if http_guard::is_not_public(&e) {
                ToolError::refused(message)
            } else {
                ToolError::transient(message)
            }
        })?;
        let status = response.status();
        let (kept, truncated) = self.read_capped(response).await?;
        let body = match std::str::from_utf8(&kept) {
            Ok(text) => json!({ "text": text }),
            Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(&kept) }),
        };
        let output = json!({
            "status": status.as_u16(),
            "body": body,
            "truncated": truncated,
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
