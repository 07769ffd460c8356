//! aider's output: text, not events.
//!
//! - `Tokens: 1.0k sent, 50 received. Cost: $0.0024 message, $0.0024 session.`: one per model
//!   exchange (the API's figures with `--no-stream`, abbreviated; `sent` includes cached
//!   tokens, named as `cache write` / `cache hit` when there are any). A run that printed none
//!   never got an answer: it did not finish.
//! - `Applied edit to PATH`, `Commit 1c2d3e4 MESSAGE`: the activity.
//! - `litellm.<Kind>Error: ...`: an API error, after which it exits 0; a rate limit or spent
//!   quota (`RateLimitError`, "The API provider has rate limited you") is retried by aider
//!   itself, then it gives up: a usage limit without a reset time.
//! - `^C again to exit`: interrupted.
//!
//! No session id: its chat history file (in the task's home) is what `--restore-chat-history`
//! resumes, so a finished run's session is that file's.

use super::{LimitHit, Observer};
use crate::agent::usage::Usage;

/// What stands for aider's session: its chat history, kept in the task's home.
pub const HISTORY_SESSION: &str = "chat-history";

pub(super) fn read(seen: &mut Observer, output: &str) {
    let mut usage: Option<Usage> = None;
    let mut interrupted = false;
    let mut last_text: Vec<&str> = Vec::new();
    for line in output.lines() {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("Tokens: ") {
            let exchange = tokens_line(rest);
            usage = Some(match &usage {
                Some(sum) => sum.add(&exchange),
                None => exchange,
            });
            if !last_text.is_empty() {
                seen.observed.answer = Some(last_text.join("\n"));
            }
            last_text.clear();
        } else if let Some(path) = line.strip_prefix("Applied edit to ") {
            seen.act("edit", path);
        } else if let Some(rest) = line.strip_prefix("Commit ") {
            seen.act("commit", rest.split_once(' ').map_or(rest, |(_, m)| m));
        } else if line.starts_with("litellm.") && line.contains("Error") {
            let message = line.split_once(": ").map_or(line, |(_, m)| m);
            if line.contains("RateLimitError") {
                seen.observed.limit = Some(LimitHit {
                    message: message.trim_start_matches("RateLimitError: ").to_string(),
                    resets_at: None,
                });
            } else {
                seen.error(message);
            }
        } else if line.starts_with("The API provider has rate limited you") {
            if seen.observed.limit.is_none() {
                seen.observed.limit = Some(LimitHit {
                    message: line.to_string(),
                    resets_at: None,
                });
            }
        } else if line.contains("^C again to exit") {
            interrupted = true;
        } else if !line.trim().is_empty() && !is_banner(line) {
            last_text.push(line);
        }
    }
    let finished = usage.is_some() && !interrupted;
    seen.observed.finished = finished;
    seen.observed.usage = usage;
    if finished {
        seen.observed.session = Some(HISTORY_SESSION.to_string());
        // Limits and errors it recovered from before its answer came are not the run's end.
        seen.observed.limit = None;
    } else if seen.observed.limit.is_none()
        && let Some(last) = seen.observed.errors.pop()
    {
        seen.observed.failure = Some(last);
    }
}

/// The lines aider prints at every start.
fn is_banner(line: &str) -> bool {
    [
        "Aider v",
        "Model: ",
        "Git repo: ",
        "Repo-map: ",
        "Detected dumb terminal",
        "https://aider.chat/",
        "Restored previous conversation history.",
        "Retrying in ",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// `1.0k sent, 300 cache hit, 50 received. Cost: $0.0024 message, $0.0024 session.`
fn tokens_line(rest: &str) -> Usage {
    let (counts, cost) = rest.split_once(". Cost: ").unwrap_or((rest, ""));
    let mut usage = Usage {
        turns: Some(1),
        ..Usage::default()
    };
    let mut sent = 0;
    for part in counts.trim_end_matches('.').split(", ") {
        let Some((figure, what)) = part.trim().split_once(' ') else {
            continue;
        };
        let n = figure_of(figure);
        match what {
            "sent" => sent = n,
            "received" => usage.output = n,
            "cache hit" => usage.cache_read = n,
            "cache write" => usage.cache_write = n,
            _ => {}
        }
    }
    usage.input = sent.saturating_sub(usage.cache_read + usage.cache_write);
    usage.cost_usd = cost
        .split_once(" message")
        .and_then(|(c, _)| c.trim().trim_start_matches('$').parse().ok());
    usage
}

/// `1.0k` -> 1000, `12k` -> 12000, `1.2M` -> 1200000, `50` -> 50.
fn figure_of(text: &str) -> u64 {
    let (number, scale) = match text.chars().last() {
        Some('k') => (&text[..text.len() - 1], 1_000.0),
        Some('M') => (&text[..text.len() - 1], 1_000_000.0),
        _ => (text, 1.0),
    };
    number
        .replace(',', "")
        .parse::<f64>()
        .map(|n| (n * scale).round() as u64)
        .unwrap_or(0)
}
