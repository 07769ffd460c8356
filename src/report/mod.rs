//! What the user sees: progress, event lines, NDJSON events, the final report.
//!
//! This layer sees plain data (run state, events), never git2 types or processes.

pub mod actions;
pub mod conflict;
pub mod dry_run_view;
mod events;
pub mod forecast_view;
mod gates_view;
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
// The text helpers the CLI renders with (it reaches them through report, see `lib.rs`).
pub use crate::text::{quote_path, quote_paths, sanitize, shell_quote, short};
pub use reporter::Reporter;

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
        (StreamState::Parked(_), _) => "parked",
        (StreamState::Done { .. }, _) => "integrated",
        (StreamState::Failed { .. }, _) => "failed",
        (StreamState::Stopped { .. }, _) => "stopped",
        (StreamState::Skipped { .. }, _) => "skipped",
    }
}

/// The last lines of a timeline step's log, for the CI reports (JUnit failure text, GitHub
/// groups); none when the step has no log of its own.
pub fn span_log_tail(span: &crate::state::Span) -> Vec<String> {
    span.log
        .as_deref()
        .map(|log| crate::agent::log::tail(log, 20))
        .unwrap_or_default()
}

pub use crate::duration::fmt_duration_ms;

/// The note for files a task wrote that git ignores (see `git::ignored`).
pub fn ignored_note(task: usize, ignored: &crate::work::IgnoredFiles) -> String {
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
