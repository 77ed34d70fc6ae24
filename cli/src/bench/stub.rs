//! An OpenAI-compatible chat completions endpoint that answers at once, for benchmarks: run as a
//! process of its own (`quorum bench openai-stub`), so that what it costs is not counted in the
//! process being measured, and both Quorum and the bare client call the same server.

use std::net::SocketAddr;
use std::process::Stdio;

use anyhow::Context as _;
use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// `quorum bench openai-stub`: serves until killed, after printing `listening <addr>`.
#[derive(Clone, Debug, clap::Args)]
pub struct StubArgs {
    /// Where to listen; port 0 takes a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
}

/// The completion every call gets: a structured final answer, as a model held to the answer
/// schema gives it, with token usage, about the size of a short real reply.
fn completion() -> Value {
    let content = json!({
        "final_answer": "Paris",
        "reasoning": "Paris has been the capital of France since the tenth century.",
        "confidence": 0.97,
    })
    .to_string();
    json!({
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "bench",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 64, "completion_tokens": 24, "total_tokens": 88},
    })
}

/// Serves the stub on `args.listen` until the process is killed.
pub async fn serve(args: &StubArgs) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    // Built once: every call answers with the same bytes, as a cache in front of a model would.
    let reply = completion();
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        post(move |Json(request): Json<Value>| {
            let reply = reply.clone();
            async move {
                // Read like a server would: a request without messages is not a completion.
                if request.get("messages").is_none() {
                    return Err(axum::http::StatusCode::BAD_REQUEST);
                }
                Ok(Json(reply))
            }
        }),
    );
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// The stub running as a child process; killed when dropped.
pub struct Stub {
    /// `http://<addr>/v1`, as an `openai` expert's `base_url` takes it.
    pub base_url: String,
    _child: Child,
}

impl Stub {
    /// Starts `quorum bench openai-stub` (this same executable) and waits for its address.
    pub async fn start() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("find the quorum executable")?;
        let mut child = Command::new(exe)
            .args(["bench", "openai-stub"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("start the OpenAI-compatible stub")?;
        let stdout = child.stdout.take().context("the stub's output")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next_line()
                .await?
                .context("the stub exited before it listened")?;
            if let Some(addr) = line.strip_prefix("listening ") {
                break addr.to_owned();
            }
        };
        Ok(Self {
            base_url: format!("http://{addr}/v1"),
            _child: child,
        })
    }
}
