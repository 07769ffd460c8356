//! Gemini CLI's `stream-json` events.
//!
//! - `init`: the session and model.
//! - `tool_use`: the activity (`tool_name`, `parameters`); `tool_result` with `status: "error"`:
//!   an error.
//! - `message` from the assistant: the answer (in `delta` pieces).
//! - `result`: the end. `status: "success"` with `stats` (its `input_tokens` includes `cached`;
//!   `input` is the uncached part), or `status: "error"` with `error.message`; a spent quota
//!   (HTTP 429, "exhausted your daily quota") is a usage limit without a reset time.

use super::{LimitHit, Observer, error_message, json_lines, target_of, u64_of};
use crate::agent::usage::Usage;

pub(super) fn read(seen: &mut Observer, output: &str) {
    let mut answer = String::new();
    for event in json_lines(output) {
        match event["type"].as_str() {
            Some("init") => seen.session(event["session_id"].as_str()),
            Some("tool_use") => {
                let tool = event["tool_name"].as_str().unwrap_or("tool");
                seen.act(tool, &target_of(&event["parameters"]));
            }
            Some("tool_result") if event["status"] == "error" => {
                let message = event["error"]["message"]
                    .as_str()
                    .or(event["output"].as_str())
                    .unwrap_or("a tool failed");
                seen.error(message);
            }
            Some("message") if event["role"] == "assistant" => {
                let text = event["content"].as_str().unwrap_or("");
                if event["delta"] == true {
                    answer.push_str(text);
                } else {
                    answer = text.to_string();
                }
                seen.observed.answer = Some(answer.clone());
            }
            Some("message") if event["role"] == "user" => answer.clear(),
            Some("result") => {
                seen.observed.finished = true;
                let stats = &event["stats"];
                let cache_read = u64_of(&stats["cached"]);
                let input = match stats["input"].as_u64() {
                    Some(uncached) => uncached,
                    None => u64_of(&stats["input_tokens"]).saturating_sub(cache_read),
                };
                let models = stats["models"]
                    .as_object()
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                seen.observed.usage = Some(Usage {
                    input,
                    output: u64_of(&stats["output_tokens"]),
                    cache_read,
                    models,
                    ..Usage::default()
                });
                if event["status"] == "error" {
                    let message = event["error"]["message"]
                        .as_str()
                        .unwrap_or("the run failed")
                        .to_string();
                    // `[API Error: <body or message>]`, then advice on lines of its own.
                    let first = message.lines().next().unwrap_or("");
                    let message = match first
                        .strip_prefix("[API Error: ")
                        .and_then(|inner| inner.strip_suffix(']'))
                    {
                        Some(inner) => error_message(inner),
                        None => message,
                    };
                    let lower = message.to_lowercase();
                    if lower.contains("quota")
                        || lower.contains("resource_exhausted")
                        || lower.contains("429")
                    {
                        seen.observed.limit = Some(LimitHit {
                            message,
                            resets_at: None,
                        });
                    } else {
                        seen.observed.failure = Some(message);
                    }
                }
            }
            _ => {}
        }
    }
}
