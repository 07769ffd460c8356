//! Claude Code's `stream-json` events, and Qwen Code's (the same shapes).
//!
//! - `system`/`init`: the session; `system`/`model_refusal_no_fallback`: a refusal. Claude
//!   Code then writes its own fixed text (a "Usage Policy" message) in a `<synthetic>`
//!   assistant message and in the `result`: the model's own words are only in the assistant
//!   message before it, so a refusal quotes those first.
//! - `rate_limit_event` with `status: "rejected"`: a usage limit and when it resets (claude.ai
//!   logins only).
//! - `assistant`: `tool_use` blocks (the activity), text (the answer). Its `usage` is the
//!   stream's first figure, not the message's: never summed.
//! - `user`: `tool_result` blocks; `is_error` ones are errors (a denied command among them).
//! - `result`: the end. Usage (Claude's input excludes the cache, Qwen's includes it), cost,
//!   turns, models; `is_error`, `api_error_status` (429: a usage limit), `stop_reason:
//!   "refusal"`, `permission_denials`. Qwen reports API errors as a successful result whose
//!   text starts with `[API Error:`.

use serde_json::Value;

use super::{LimitHit, Observer, error_message, json_lines, one_line, target_of, u64_of};
use crate::agent::Cli;
use crate::agent::usage::Usage;

pub(super) fn read(seen: &mut Observer, cli: Cli, output: &str) {
    let mut resets_at = None;
    // A refusal the system event gives no words for: told only if nothing says more.
    let mut refused_silently = false;
    // What the model itself said since its last action: the words of a refusal, which Claude
    // Code's own message replaces.
    let mut words: Option<String> = None;
    for event in json_lines(output) {
        seen.session(event["session_id"].as_str());
        match (event["type"].as_str(), event["subtype"].as_str()) {
            (Some("system"), Some("model_refusal_no_fallback")) => {
                let content = event["content"].as_str().unwrap_or("");
                if content.is_empty() {
                    refused_silently = true;
                } else {
                    seen.refusal(content);
                }
            }
            (Some("rate_limit_event"), _) => {
                let info = &event["rate_limit_info"];
                if info["status"] == "rejected" {
                    resets_at = info["resetsAt"].as_u64();
                }
            }
            (Some("assistant"), _) => {
                model_words(&mut words, &event["message"]);
                assistant(seen, cli, &event["message"]);
            }
            (Some("user"), _) => {
                words = None;
                tool_results(seen, &event["message"]);
            }
            (Some("result"), _) => result(seen, cli, &event, resets_at, words.as_deref()),
            _ => {}
        }
    }
    if refused_silently && seen.observed.refusals.is_empty() {
        seen.refusal(&match &words {
            Some(words) => format!("the model said \"{words}\""),
            None => "the model refused the request".to_string(),
        });
    }
}

/// Keeps the first line of what the model said in an assistant message (not Claude Code's own
/// `<synthetic>` ones); an action clears it: words before it are not what it ended on.
fn model_words(words: &mut Option<String>, message: &Value) {
    if message["model"] == "<synthetic>" {
        return;
    }
    for block in message["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => {
                let line = one_line(block["text"].as_str().unwrap_or(""), 200);
                if !line.is_empty() {
                    *words = Some(line);
                }
            }
            Some("tool_use") => *words = None,
            _ => {}
        }
    }
}

fn assistant(seen: &mut Observer, cli: Cli, message: &Value) {
    for block in message["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("tool_use") => {
                let tool = block["name"].as_str().unwrap_or("tool");
                seen.act(tool, &target_of(&block["input"]));
            }
            Some("text") => {
                let text = block["text"].as_str().unwrap_or("");
                if cli == Cli::Qwen && text.starts_with("[API Error:") {
                    seen.error(text);
                }
                seen.observed.answer = Some(text.to_string());
            }
            _ => {}
        }
    }
}

fn tool_results(seen: &mut Observer, message: &Value) {
    for block in message["content"].as_array().into_iter().flatten() {
        if block["type"] == "tool_result" && block["is_error"] == true {
            let text = match &block["content"] {
                Value::String(s) => s.clone(),
                Value::Array(parts) => parts
                    .iter()
                    .filter_map(|p| p["text"].as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                _ => String::new(),
            };
            seen.error(&text);
        }
    }
}

/// The final event; `words`: what the model last said (see [`model_words`]).
fn result(
    seen: &mut Observer,
    cli: Cli,
    event: &Value,
    resets_at: Option<u64>,
    words: Option<&str>,
) {
    let observed = &mut seen.observed;
    observed.finished = true;
    let text = event["result"].as_str().unwrap_or("").to_string();
    if !text.is_empty() {
        observed.answer = Some(text.clone());
    }
    let u = &event["usage"];
    let cache_read = u64_of(&u["cache_read_input_tokens"]);
    let cache_write = u64_of(&u["cache_creation_input_tokens"]);
    let input = match cli {
        // Qwen's input figure includes the cached tokens (OpenAI's way).
        Cli::Qwen => u64_of(&u["input_tokens"]).saturating_sub(cache_read + cache_write),
        _ => u64_of(&u["input_tokens"]),
    };
    let mut models: Vec<String> = event["modelUsage"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    models.retain(|m| m != "<synthetic>");
    observed.usage = Some(Usage {
        input,
        output: u64_of(&u["output_tokens"]),
        cache_read,
        cache_write,
        cost_usd: event["total_cost_usd"].as_f64(),
        turns: event["num_turns"].as_u64().map(|n| n as u32),
        models,
        estimated: false,
    });
    for denial in event["permission_denials"].as_array().into_iter().flatten() {
        let tool = denial["tool_name"].as_str().unwrap_or("a tool");
        let target = target_of(&denial["tool_input"]);
        seen.refusal(&format!("permission denied: {tool} {target}"));
    }
    let api_error = cli == Cli::Qwen && text.starts_with("[API Error:");
    let refused = event["stop_reason"] == "refusal";
    if refused {
        // The model's words first: Claude Code's text is the same for every refusal.
        seen.refusal(&match words {
            Some(words) if text.is_empty() => format!("the model said \"{words}\""),
            Some(words) if !text.contains(words) => {
                format!("the model said \"{words}\" ({text})")
            }
            _ => text.clone(),
        });
    }
    let observed = &mut seen.observed;
    if event["is_error"] == true || api_error {
        let message = if text.is_empty() {
            match event["subtype"].as_str() {
                Some("error_during_execution") => "interrupted".to_string(),
                Some(other) => other.replace('_', " "),
                None => "the run failed".to_string(),
            }
        } else {
            error_message(&text)
        };
        let limited = event["api_error_status"] == 429
            || (api_error && (text.contains("429") || text.contains("quota")));
        if limited {
            observed.limit = Some(LimitHit {
                message: message.clone(),
                resets_at,
            });
        } else if !refused {
            observed.failure = Some(message);
        }
    }
}
