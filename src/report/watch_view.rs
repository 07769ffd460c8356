//! `streams status --watch` when its output is not a terminal: one line per change, so a CI log
//! or a file shows the run's course without redraws.

use super::status_view::{RunStatus, StreamStatus};

/// The lines that tell what changed from `before` (None: nothing seen yet) to `now`.
pub fn changes(before: Option<&RunStatus>, now: &RunStatus) -> Vec<String> {
    let mut lines = Vec::new();
    let same_run = before.filter(|b| b.id == now.id);
    if same_run.is_none() {
        lines.push(format!(
            "run {} of plan `{}`: {}",
            now.id,
            now.plan,
            phase(now)
        ));
    }
    for s in &now.streams {
        let old = same_run.and_then(|b| b.streams.iter().find(|o| o.name == s.name));
        lines.extend(stream_changes(old, s));
    }
    // The run's own change last: its streams' changes are what led to it.
    if let Some(b) = same_run
        && phase(b) != phase(now)
    {
        lines.push(format!("run: {}", phase(now)));
    }
    for h in &now.parked {
        let seen = same_run.is_some_and(|b| {
            b.parked
                .iter()
                .any(|o| o.stream == h.stream && o.parked_at == h.parked_at)
        });
        if !seen {
            lines.push(format!(
                "parked: integrating stream `{}` conflicts in {}; resolve in {}, then `streams continue {}`",
                h.stream,
                h.files.join(", "),
                h.resolution_worktree,
                h.stream
            ));
        }
    }
    lines
}

fn phase(run: &RunStatus) -> String {
    match (&run.phase[..], &run.outcome) {
        ("finished", Some(outcome)) => format!("finished: {outcome}"),
        (phase, _) => phase.to_string(),
    }
}

fn stream_changes(old: Option<&StreamStatus>, s: &StreamStatus) -> Vec<String> {
    let mut lines = Vec::new();
    let state_changed = old.is_none_or(|o| o.state != s.state || o.task != s.task);
    if state_changed {
        let mut line = format!("{}: {}", s.name, s.state);
        if let Some(task) = s.task {
            line.push_str(&format!(" (task {task}/{})", s.tasks));
        }
        if let Some(reason) = &s.reason {
            line.push_str(&format!(": {reason}"));
        }
        lines.push(line);
    }
    if s.commits > old.map_or(0, |o| o.commits)
        && let Some(message) = &s.last_message
    {
        let n = s.commits;
        let noun = if n == 1 { "commit" } else { "commits" };
        lines.push(format!("{}: {n} {noun}, last: {message}", s.name));
    }
    lines
}
