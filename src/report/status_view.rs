//! `streams status` as data (the `--json` document) and as text.

use std::fmt::Write as _;

use serde::Serialize;

use super::{fmt_duration_ms, hints, short};
use crate::state::lock;

/// Version of the `status --json` schema.
pub const STATUS_SCHEMA: u32 = 1;

#[derive(Serialize)]
pub struct Status {
    pub schema: u32,
    pub run: Option<RunStatus>,
}

#[derive(Serialize)]
pub struct RunStatus {
    pub id: String,
    pub plan: String,
    /// `running`, `interrupted`, `halted`, `finished`, `aborted`.
    pub phase: String,
    /// For a finished run: `integrated`, `failed`, or `skipped` (integrated but for the streams
    /// left out with `streams skip`).
    pub outcome: Option<String>,
    pub holder: Option<lock::Holder>,
    pub base: String,
    pub integration_branch: String,
    /// Where the integration branch is; null when it does not exist (an aborted run that
    /// created it removed it).
    pub integration_tip: Option<String>,
    pub started_at: u64,
    pub streams: Vec<StreamStatus>,
    pub halt: Option<HaltStatus>,
    pub predicted_conflicts: Vec<PredictedConflict>,
}

#[derive(Serialize)]
pub struct StreamStatus {
    pub name: String,
    /// `pending`, `setting up`, `running`, `waiting`, `integrated`, `failed`, `skipped`, or
    /// `aborted` (was integrated when the run was aborted; abort took it off the integration
    /// branch).
    pub state: String,
    /// The task running now (1-based), if any.
    pub task: Option<usize>,
    pub tasks: usize,
    /// Tasks whose work is committed (integrated or waiting for it).
    pub tasks_done: usize,
    pub elapsed_ms: Option<u64>,
    /// The commit its first task started from: the integration tip when the stream started.
    pub started_from: Option<String>,
    pub commits: usize,
    pub last_message: Option<String>,
    pub reason: Option<String>,
}

#[derive(Serialize)]
pub struct HaltStatus {
    pub stream: String,
    pub files: Vec<String>,
    pub base: String,
    pub ours: String,
    pub theirs: String,
    pub bundle: String,
    pub resolution_worktree: String,
    /// False once someone deleted it (`continue` lays it out again).
    pub resolution_worktree_exists: bool,
}

/// Two branches (or a branch and the integration tip) that would conflict: the
/// coordinator's prediction, as `status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PredictedConflict {
    pub left: String,
    pub right: String,
    pub files: Vec<String>,
}

/// The status of a run as a person reads it.
pub fn render(run: &RunStatus) -> String {
    let mut out = String::new();
    let phase = match (&run.phase[..], &run.holder, &run.outcome) {
        ("running", Some(h), _) => format!(
            "running (`streams {}`, pid {} on {})",
            h.command, h.pid, h.host
        ),
        ("finished", _, Some(outcome)) if outcome == "skipped" => {
            "finished: integrated, but for the streams left out as you chose".to_string()
        }
        ("finished", _, Some(outcome)) => format!("finished: {outcome}"),
        (phase, _, _) => phase.to_string(),
    };
    let _ = writeln!(out, "run {} of plan `{}`: {phase}", run.id, run.plan);
    let branch = &run.integration_branch;
    let _ = match (run.phase.as_str(), &run.integration_tip) {
        ("aborted", Some(tip)) => writeln!(
            out,
            "integration branch {branch} is back at {} (where the run found it)",
            short(tip)
        ),
        (_, Some(tip)) => writeln!(out, "integration branch {branch} at {}", short(tip)),
        (_, None) => writeln!(
            out,
            "integration branch {branch} does not exist (abort removed it: there was none before the run)"
        ),
    };
    let _ = writeln!(out);
    let width = run
        .streams
        .iter()
        .map(|s| s.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "{:width$}  {:<10}  {:>5}  {:>7}  {:<10}  {:>7}  last commit",
        "stream", "state", "tasks", "elapsed", "from", "commits"
    );
    for s in &run.streams {
        // The task running now, else how many are done: `-/2` said nothing about a finished
        // stream.
        let task = format!("{}/{}", s.task.unwrap_or(s.tasks_done), s.tasks);
        let elapsed = s
            .elapsed_ms
            .map(fmt_duration_ms)
            .unwrap_or_else(|| "-".into());
        let message = s.last_message.clone().unwrap_or_default();
        let from = s.started_from.as_deref().map(short).unwrap_or("-");
        let line = format!(
            "{:width$}  {:<10}  {:>5}  {:>7}  {from:<10}  {:>7}  {message}",
            s.name, s.state, task, elapsed, s.commits
        );
        let _ = writeln!(out, "{}", line.trim_end());
        if let Some(reason) = &s.reason {
            let _ = writeln!(out, "{:width$}  {reason}", "");
        }
    }
    if let Some(h) = &run.halt {
        let _ = writeln!(
            out,
            "\nhalted: integrating stream `{}` conflicts in {}",
            h.stream,
            super::quote_paths(&h.files)
        );
        let _ = writeln!(
            out,
            "  base {}  ours (integration) {}  theirs ({}) {}",
            short(&h.base),
            short(&h.ours),
            h.stream,
            short(&h.theirs)
        );
        let _ = writeln!(out, "  conflict bundle: {}/README.md", h.bundle);
        let gone = if h.resolution_worktree_exists {
            ""
        } else {
            " (deleted: `streams continue` lays it out again)"
        };
        let _ = writeln!(out, "  resolve in:      {}{gone}", h.resolution_worktree);
        for line in hints::halted_status(&h.stream) {
            let _ = writeln!(out, "{line}");
        }
    } else if run.phase == "interrupted" {
        let _ = writeln!(out, "\n{}", hints::INTERRUPTED_STATUS);
    }
    if !run.predicted_conflicts.is_empty() {
        let _ = writeln!(out, "\npredicted conflicts (not integrated yet):");
        for p in &run.predicted_conflicts {
            let _ = writeln!(
                out,
                "  {} <-> {}: {}",
                p.left,
                p.right,
                super::quote_paths(&p.files)
            );
        }
    }
    out
}
