//! Whether a CLI is getting anywhere, line by line, as it prints: for the output watcher
//! (`exec::process`), which stops a CLI that keeps failing to reach its model.
//!
//! A CLI pointed at an address nothing answers does not give up on its own, or only after a
//! long while, and its retry messages are output, so an idle timeout never fires (recorded:
//! `fixtures/agents/recorded/<cli>/unreachable.*`, `docs/agents.md`):
//!
//! - Codex retries for ever, whatever `request_max_retries` says: `{"type":"error","message":
//!   "Reconnecting... waiting for network (Connection failed: error sending request)"}` after
//!   5, 10, 20, 40 s ... on stdout.
//! - Claude Code retries 10 times over about 3 minutes, each announced by a `system`/`api_retry`
//!   event with `error_status: null` (no HTTP status: no answer at all).
//! - Gemini CLI prints `Attempt N failed. Retrying with backoff... Error: exception TypeError:
//!   fetch failed sending request` (and a stack trace) on stderr.
//!
//! Claude Code and Gemini CLI then give up with an error result, which is no progress: their
//! exit ends the run of failures, and that is how the run ended.
//!
//! Only a failure to get any answer counts: an HTTP error status (a 429, a 529) means the model's
//! server answered, and each CLI bounds those retries itself.

use serde_json::Value;

use crate::agent::Cli;

/// What one line says of a run's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Beat {
    /// The model answered or a tool ran.
    Progress,
    /// A request got no answer from the model's server and is being retried: the CLI's words.
    Unreachable(String),
}

/// What `line` (of stdout or stderr, either) says of `cli`'s progress; `None`: nothing.
pub fn beat(cli: Cli, line: &str) -> Option<Beat> {
    let line = line.trim();
    if !line.starts_with('{') {
        return match cli {
            Cli::Gemini | Cli::Qwen => gemini_text(line),
            _ => None,
        };
    }
    let event: Value = serde_json::from_str(line).ok()?;
    match cli {
        Cli::Codex => codex(&event),
        Cli::Claude | Cli::Qwen => claude(&event),
        Cli::Gemini => gemini(&event),
        Cli::Aider => None,
    }
}

fn codex(event: &Value) -> Option<Beat> {
    match event["type"].as_str()? {
        // `Reconnecting... waiting for network (...)`: no answer at all. Its other reconnects
        // (`Reconnecting... 2/5` after a stream cut off or an HTTP 5xx, `Reconnecting... retry
        // 3 (waiting 20s)`) follow an answer from the server, and Codex bounds those itself.
        "error" => {
            let message = event["message"].as_str().unwrap_or("");
            message
                .starts_with("Reconnecting... waiting for network")
                .then(|| Beat::Unreachable(message.to_string()))
        }
        "item.started" | "item.completed" if event["item"]["type"] != "error" => {
            Some(Beat::Progress)
        }
        // Its error result (`turn.failed`) is no progress: a run that failed to reach the model
        // and gave up ends with one.
        "turn.completed" => Some(Beat::Progress),
        _ => None,
    }
}

fn claude(event: &Value) -> Option<Beat> {
    match (event["type"].as_str()?, event["subtype"].as_str()) {
        ("system", Some("api_retry")) if event["error_status"].is_null() => {
            // Its own words are its event's fields.
            let error = event["error"].as_str().unwrap_or("unknown");
            let attempt = &event["attempt"];
            let of = &event["max_retries"];
            Some(Beat::Unreachable(format!(
                "api_retry {attempt} of {of}: error {error}, no HTTP status"
            )))
        }
        ("result", _) if event["is_error"] == true => None,
        ("assistant" | "user" | "result", _) => Some(Beat::Progress),
        _ => None,
    }
}

fn gemini(event: &Value) -> Option<Beat> {
    match event["type"].as_str()? {
        "result" if event["status"] == "error" => None,
        "tool_use" | "tool_result" | "result" => Some(Beat::Progress),
        "message" if event["role"] == "assistant" => Some(Beat::Progress),
        _ => None,
    }
}

/// `Attempt 2 failed. Retrying with backoff... Error: exception TypeError: fetch failed sending
/// request` (a failed fetch: no answer; an HTTP error names its status instead).
fn gemini_text(line: &str) -> Option<Beat> {
    if !(line.starts_with("Attempt ") && line.contains("Retrying with backoff")) {
        return None;
    }
    let error = line.split_once("Error: ").map_or(line, |(_, e)| e);
    error
        .contains("fetch failed")
        .then(|| Beat::Unreachable(error.trim_start_matches("exception ").to_string()))
}
