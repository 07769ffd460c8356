//! What the user sees: progress, event lines, NDJSON events, the final report.
//!
//! This layer sees plain data (run state, events), never git2 types or processes.

pub mod conflict;
pub mod dry_run_view;
mod events;
mod gates_view;
pub mod github;
pub mod hints;
pub mod html;
pub mod init_view;
pub mod junit;
pub mod learn_view;
pub mod mermaid;
pub mod page;
pub mod plan_view;
pub mod pr_view;
pub mod printer;
pub(crate) mod quote;
pub mod redact;
pub mod reporter;
pub mod runs_view;
pub mod session_view;
pub mod show_view;
pub mod status_view;
pub mod summary;
pub mod svg;
pub mod timeline;
pub mod watch_view;

pub use events::{EVENTS_SCHEMA, Event};
pub use printer::{ColorChoice, Ui, print_bytes, print_data, print_json};
pub use quote::{quote_path, quote_paths};
pub use reporter::Reporter;

/// The short form of a commit id, as messages show it.
pub fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

/// The word a person reads for a stream's state, the same in `status`, the live view and the
/// final report. `running`, when known, tells a stream whose task is running from one whose work
/// waits for integration (the final report does not make that distinction: both are `active`).
pub fn stream_word(state: &crate::state::StreamState, running: Option<bool>) -> &'static str {
    use crate::state::StreamState;
    match (state, running) {
        (StreamState::Pending, _) => "pending",
        (StreamState::Active { .. }, Some(true)) => "running",
        (StreamState::Active { .. }, Some(false)) => "waiting",
        (StreamState::Active { .. }, None) => "active",
        (StreamState::Done { .. }, _) => "integrated",
        (StreamState::Failed { .. }, _) => "failed",
        (StreamState::Skipped { .. }, _) => "skipped",
        (StreamState::Stopped { .. }, _) => "stopped",
    }
}

/// Quotes a word for a POSIX shell when it needs it, for commands shown to people (a path with
/// a space in a printed `cd` must still work when pasted).
pub fn shell_quote(word: &str) -> String {
    if word.chars().any(quote::is_unsafe_char) {
        return quote::ansi_c_quote(word);
    }
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+{}".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Agent output is arbitrary bytes: keep printable text and tabs, drop escape sequences and
/// other control characters before anything reaches a terminal.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI sequences: ESC [ ... final byte in @..~
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
            }
            '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The last lines of a timeline step's log, for the CI reports (JUnit failure text, GitHub
/// groups); none when the step has no log of its own.
pub fn span_log_tail(span: &crate::state::Span) -> Vec<String> {
    span.log
        .as_deref()
        .map(|log| log_tail(log, 20))
        .unwrap_or_default()
}

/// The last `n` non-empty lines of a log, sanitised, each cut to a sensible width.
pub fn log_tail(path: &std::path::Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    // Only the end matters; a flooded log can be huge.
    let from = len.saturating_sub(16 * 1024);
    let _ = file.seek(SeekFrom::Start(from));
    let mut bytes = Vec::new();
    let _ = file.take(16 * 1024).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("=== streams:") && !l.starts_with("=== argv:"))
        .map(sanitize)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            if l.chars().count() > 160 {
                format!("{}...", l.chars().take(157).collect::<String>())
            } else {
                l
            }
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

pub use crate::duration::fmt_duration_ms;

/// The note for files a task wrote that git ignores (see `git::ignored`).
pub fn ignored_note(task: usize, ignored: &crate::git::ignored::IgnoredFiles) -> String {
    let mut text = format!(
        "task {task} wrote {} path(s) that git ignores, left out of its work: {}",
        ignored.count,
        quote_paths(&ignored.examples)
    );
    if ignored.count > ignored.examples.len() {
        text.push_str(&format!(
            " and {} more",
            ignored.count - ignored.examples.len()
        ));
    }
    text.push_str(" (to keep them, change the ignore rule or have the agent `git add -f` them)");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_escapes() {
        assert_eq!(sanitize("\u{1b}[31mred\u{1b}[0m\tok\u{7}"), "red ok");
    }
}
