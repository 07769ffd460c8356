//! `streams status`: the current or last run, per stream. Reads only (no lock), so it works
//! from another terminal while a run is going.

use std::fmt::Write as _;

use crate::coordinator;
use crate::error::{ExitCode, Result};
use crate::ops::{self, status::RunStatus};
use crate::report::fmt_duration_ms;

use super::{Context, StatusArgs, load};

pub fn status(ctx: &Context, args: StatusArgs) -> Result<ExitCode> {
    let repo = load::open_repo(ctx)?;
    let status = ops::status::status(&repo)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).unwrap_or_default()
        );
    } else {
        match &status.run {
            Some(run) => print!("{}", render(run)),
            None => ctx
                .ui
                .info("no streams run in this repository yet: start one with `streams run`"),
        }
    }
    Ok(ExitCode::Success)
}

fn render(run: &RunStatus) -> String {
    let mut out = String::new();
    let phase = match (&run.phase[..], &run.holder, &run.outcome) {
        ("running", Some(h), _) => format!(
            "running (`streams {}`, pid {} on {})",
            h.command, h.pid, h.host
        ),
        ("finished", _, Some(outcome)) => format!("finished: {outcome}"),
        (phase, _, _) => phase.to_string(),
    };
    let _ = writeln!(out, "run {} of plan `{}`: {phase}", run.id, run.plan);
    let _ = writeln!(
        out,
        "integration branch {} at {}",
        run.integration_branch,
        coordinator::short(&run.integration_tip)
    );
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
        "{:width$}  {:<10}  {:>5}  {:>7}  {:>7}  last commit",
        "stream", "state", "task", "elapsed", "commits"
    );
    for s in &run.streams {
        let task = s
            .task
            .map(|t| format!("{t}/{}", s.tasks))
            .unwrap_or_else(|| format!("-/{}", s.tasks));
        let elapsed = s
            .elapsed_ms
            .map(fmt_duration_ms)
            .unwrap_or_else(|| "-".into());
        let message = s.last_message.clone().unwrap_or_default();
        let line = format!(
            "{:width$}  {:<10}  {:>5}  {:>7}  {:>7}  {message}",
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
            h.files.join(", ")
        );
        let _ = writeln!(
            out,
            "  base {}  ours (integration) {}  theirs ({}) {}",
            coordinator::short(&h.base),
            coordinator::short(&h.ours),
            h.stream,
            coordinator::short(&h.theirs)
        );
        let _ = writeln!(out, "  conflict bundle: {}/README.md", h.bundle);
        let _ = writeln!(out, "  resolve in:      {}", h.resolution_worktree);
        let _ = writeln!(
            out,
            "next: resolve there, `git add` the files, then `streams continue`"
        );
        let _ = writeln!(
            out,
            "  or: `streams skip {}` to leave it out, `streams abort` to stop the run",
            h.stream
        );
    } else if run.phase == "interrupted" {
        let _ = writeln!(
            out,
            "\nnext: `streams resume` goes on from where it stopped (or `streams abort`)"
        );
    }
    if !run.predicted_conflicts.is_empty() {
        let _ = writeln!(out, "\npredicted conflicts (not integrated yet):");
        for p in &run.predicted_conflicts {
            let _ = writeln!(out, "  {} <-> {}: {}", p.left, p.right, p.files.join(", "));
        }
    }
    out
}
