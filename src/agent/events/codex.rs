//! Codex's `exec --json` events.
//!
//! - `thread.started`: the session (`thread_id`).
//! - `item.started`: `command_execution` (its command) and `file_change` (its paths): the
//!   activity. `item.completed`: a command with `status: "failed"` is an error; an
//!   `agent_message` is the answer; an `error` item is an error.
//! - `error`, `turn.failed`: an API error (its body as text); a usage limit says "try again at
//!   2:14 PM" (local time: the preset sets `TZ=UTC`) or "at Dec 9th, 2026 8:12 PM".
//! - `turn.completed`: the end, with the thread's running total of usage (its input includes
//!   the cached tokens). A refusal is dropped: no message at all.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde_json::Value;

use super::{LimitHit, Observer, error_message, json_lines, u64_of};
use crate::agent::usage::Usage;

pub(super) fn read(seen: &mut Observer, output: &str, now: u64) {
    for event in json_lines(output) {
        match event["type"].as_str() {
            Some("thread.started") => seen.session(event["thread_id"].as_str()),
            Some("item.started") => started(seen, &event["item"]),
            Some("item.completed") => completed(seen, &event["item"]),
            Some("error") => {
                let message = error_message(event["message"].as_str().unwrap_or(""));
                if !limit(seen, &message, now) {
                    seen.error(&message);
                }
            }
            Some("turn.failed") => {
                seen.observed.finished = true;
                let message = error_message(event["error"]["message"].as_str().unwrap_or(""));
                if !limit(seen, &message, now) {
                    seen.observed.failure = Some(message);
                }
            }
            Some("turn.completed") => {
                seen.observed.finished = true;
                let u = &event["usage"];
                let cache_read = u64_of(&u["cached_input_tokens"]);
                let cache_write = u64_of(&u["cache_write_input_tokens"]);
                seen.observed.usage = Some(Usage {
                    input: u64_of(&u["input_tokens"]).saturating_sub(cache_read + cache_write),
                    output: u64_of(&u["output_tokens"]),
                    cache_read,
                    cache_write,
                    ..Usage::default()
                });
            }
            _ => {}
        }
    }
}

fn started(seen: &mut Observer, item: &Value) {
    match item["type"].as_str() {
        Some("command_execution") => {
            let command = item["command"].as_str().unwrap_or("");
            seen.act("exec", &unwrap_shell(command));
        }
        Some("file_change") => {
            let paths: Vec<&str> = item["changes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["path"].as_str())
                .collect();
            seen.act("edit", &paths.join(", "));
        }
        Some(other) => seen.act(other, ""),
        None => {}
    }
}

fn completed(seen: &mut Observer, item: &Value) {
    match item["type"].as_str() {
        Some("command_execution") if item["status"] == "failed" => {
            let command = unwrap_shell(item["command"].as_str().unwrap_or(""));
            let output = item["aggregated_output"].as_str().unwrap_or("").trim();
            let code = item["exit_code"]
                .as_i64()
                .map(|c| format!(" (exit {c})"))
                .unwrap_or_default();
            let first = output.lines().next().unwrap_or("");
            seen.error(&format!("`{command}` failed{code}: {first}"));
        }
        Some("agent_message") => {
            seen.observed.answer = item["text"].as_str().map(str::to_string);
        }
        Some("error") => seen.error(item["message"].as_str().unwrap_or("")),
        _ => {}
    }
}

/// `/bin/bash -lc "git commit"` -> `git commit`.
fn unwrap_shell(command: &str) -> String {
    for shell in ["/bin/bash -lc ", "bash -lc ", "/bin/sh -c ", "sh -c "] {
        if let Some(rest) = command.strip_prefix(shell) {
            let rest = rest.trim();
            for quote in ['"', '\''] {
                if let Some(inner) = rest.strip_prefix(quote).and_then(|r| r.strip_suffix(quote)) {
                    return inner.to_string();
                }
            }
            return rest.to_string();
        }
    }
    command.to_string()
}

/// Records a usage-limit message; false when `message` is not one.
fn limit(seen: &mut Observer, message: &str, now: u64) -> bool {
    let lower = message.to_lowercase();
    if !(lower.contains("usage limit") || lower.contains("usage_limit")) {
        return false;
    }
    seen.observed.limit = Some(LimitHit {
        message: message.to_string(),
        resets_at: reset_time(message, now),
    });
    true
}

/// When a Codex usage limit resets, from its message (UTC: the preset runs Codex with
/// `TZ=UTC`): "try again at 2:14 PM" is the next 2:14 PM (today, or tomorrow if that has passed
/// more than a few minutes ago: the message rounds to the minute); "try again at Dec 9th, 2026
/// 8:12 PM" is that day.
pub(crate) fn reset_time(message: &str, now: u64) -> Option<u64> {
    let at = message.rsplit("try again at ").next()?;
    if at.len() == message.len() {
        return None;
    }
    let at = at.trim().trim_end_matches('.').trim();
    let now_at = DateTime::from_timestamp(now as i64, 0)?.naive_utc();
    let (date, time) = match at.rsplit_once(", ") {
        Some((day, rest)) => {
            // "Dec 9th" + "2026 8:12 PM"
            let (year, time) = rest.split_once(' ')?;
            let (month, day) = day.split_once(' ')?;
            let day: String = day.chars().take_while(|c| c.is_ascii_digit()).collect();
            let date =
                NaiveDate::parse_from_str(&format!("{month} {day} {year}"), "%b %d %Y").ok()?;
            (Some(date), time)
        }
        None => (None, at),
    };
    let time = NaiveTime::parse_from_str(time.trim(), "%I:%M %p").ok()?;
    let when = match date {
        Some(date) => NaiveDateTime::new(date, time),
        None => {
            let today = NaiveDateTime::new(now_at.date(), time);
            if today + Duration::minutes(5) < now_at {
                today + Duration::days(1)
            } else {
                today
            }
        }
    };
    Some(when.and_utc().timestamp().max(0) as u64)
}
