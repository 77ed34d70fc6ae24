//! Talking to ingest's HTTP API: where it is and which key to present.

use std::path::PathBuf;

use crate::stack::Target;

/// Where to reach ingest and as whom; shared by the commands that use the API.
#[derive(Clone, Debug, clap::Args)]
pub struct Api {
    /// Ingest's base URL; defaults to the stack `quorum up` runs.
    #[arg(
        long,
        env = "QUORUM_INGEST_URL",
        global = true,
        help_heading = crate::help::CONNECTION
    )]
    pub ingest_url: Option<String>,
    /// An API key; defaults to the local stack's key (`<data dir>/api-key`).
    #[arg(
        long,
        env = "QUORUM_API_KEY",
        hide_env_values = true,
        global = true,
        help_heading = crate::help::CONNECTION
    )]
    pub api_key: Option<String>,
}

/// The file `quorum up` keeps the local stack's key in.
pub const API_KEY_FILE: &str = "api-key";

impl Api {
    pub fn base_url(&self, target: &Target) -> anyhow::Result<String> {
        service_url(target, "ingest", self.ingest_url.as_deref(), "--ingest-url")
    }

    pub fn key(&self, target: &Target) -> anyhow::Result<String> {
        if let Some(key) = &self.api_key {
            return Ok(key.clone());
        }
        let path: PathBuf = target.data_dir.join(API_KEY_FILE);
        std::fs::read_to_string(&path)
            .map(|k| k.trim().to_owned())
            .map_err(|_| {
                anyhow::anyhow!(
                    "no API key: pass --api-key (or QUORUM_API_KEY), or run `quorum up`, which keeps one in {}",
                    path.display()
                )
            })
    }

    /// A client, the base URL and the key.
    pub fn connect(&self, target: &Target) -> anyhow::Result<(reqwest::Client, String, String)> {
        Ok((
            quorum_http_client::client(),
            self.base_url(target)?,
            self.key(target)?,
        ))
    }
}

/// The base URL of service `name`: the one given, else the one the running `quorum up` recorded.
pub fn service_url(
    target: &Target,
    name: &str,
    given: Option<&str>,
    flag: &str,
) -> anyhow::Result<String> {
    if let Some(url) = given {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    target
        .recorded()
        .and_then(|s| s.services.into_iter().find(|s| s.name == name))
        .and_then(|s| s.http)
        .map(|addr| format!("http://{addr}"))
        .ok_or_else(|| {
            anyhow::anyhow!("no {name} to talk to: start one with `quorum up`, or pass {flag}")
        })
}

/// Reads an answer: its JSON body on success, the problem's detail as the error otherwise.
pub async fn answer(response: reqwest::Response) -> anyhow::Result<serde_json::Value> {
    let status = response.status();
    let body = response.bytes().await?;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if status.is_success() {
        return Ok(json);
    }
    let detail = json["detail"].as_str().map_or_else(
        || String::from_utf8_lossy(&body).into_owned(),
        str::to_owned,
    );
    anyhow::bail!(
        "{} {}: {detail}",
        status.as_u16(),
        json["title"].as_str().unwrap_or("")
    )
}
