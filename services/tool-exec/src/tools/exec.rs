//! The `exec` tool: `{program, args?, path_args?, env?}` run in the sandbox (allowlisted absolute
//! program, argv never through a shell, paths kept under the saga's directory, limits, reads and
//! writes confined, no network, process group killed at the timeout; nothing runs where the
//! machine cannot contain it, unless the sandbox's mode is `best_effort`). Exit 0 succeeds; a refusal or another exit fails the step for
//! good; a timeout or a spawn error may pass on another attempt.

use std::collections::BTreeMap;

use quorum_sandbox::{ExecError, ExecRequest, Policy};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Call, ToolError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    program: String,
    #[serde(default)]
    args: Vec<String>,
    /// Indexes of `args` that are file paths (resolved under the saga's directory).
    #[serde(default)]
    path_args: Vec<usize>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

pub(super) struct ExecTool {
    policy: Policy,
}

impl ExecTool {
    pub(super) fn new(policy: Policy) -> Self {
        Self { policy }
    }

    pub(super) fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(super) async fn call(&self, c: &Call<'_>) -> Result<Value, ToolError> {
        let args: Args = serde_json::from_value(c.call.args.clone())
            .map_err(|e| ToolError::refused(format!("exec arguments: {e}")))?;
        let request = ExecRequest {
            program: args.program,
            args: args.args,
            path_args: args.path_args,
            env: args.env,
            timeout: Some(c.timeout),
        };
        match quorum_sandbox::run(&self.policy, c.workdir, &request).await {
            Ok(out) => {
                let output = json!({
                    "status": out.status,
                    "signal": out.signal,
                    "stdout": String::from_utf8_lossy(&out.stdout),
                    "stderr": String::from_utf8_lossy(&out.stderr),
                    "stdout_truncated": out.stdout_truncated,
                    "stderr_truncated": out.stderr_truncated,
                    // What held the program in, on record with its output (it differs from
                    // strict only under an explicit best_effort).
                    "sandbox": {
                        "landlock": out.landlock,
                        "network_namespace": out.network_namespace,
                    },
                });
                if out.status == Some(0) {
                    Ok(output)
                } else {
                    Err(ToolError::refused(format!(
                        "exited with {:?} (signal {:?}): {output}",
                        out.status, out.signal
                    )))
                }
            }
            Err(e @ ExecError::TimedOut { .. }) => Err(ToolError::transient(e.to_string())),
            Err(e) if e.is_retryable() => Err(ToolError::transient(e.to_string())),
            Err(e) => Err(ToolError::refused(e.to_string())),
        }
    }
}
