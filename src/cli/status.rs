//! `streams status`: the current or last run, per stream. Reads only (no lock), so it works
//! from another terminal while a run is going.

use std::fmt::Write as _;

use serde::Serialize;

use crate::coordinator::{self, Prediction};
use crate::error::{ExitCode, Result};
use crate::git::{Repo, refs};
use crate::report::fmt_duration_ms;
use crate::state::{RunPhase, RunState, StateDir, StreamState, TaskState, lock, now_ms};

use super::{Context, StatusArgs, load};

/// Version of the `status --json` schema.
pub const STATUS_SCHEMA: u32 = 1;

#[derive(Serialize)]
struct StatusJson {
    schema: u32,
    run: Option<RunJson>,
}

#[derive(Serialize)]
struct RunJson {
    id: String,
    plan: String,
    /// `running`, `interrupted`, `halted`, `finished`, `aborted`.
    phase: String,
    /// For a finished run: `integrated` or `failed`.
    outcome: Option<String>,
    holder: Option<lock::Holder>,
    base: String,
    integration_branch: String,
    integration_tip: String,
    started_at: u64,
    streams: Vec<StreamJson>,
    halt: Option<HaltJson>,
    predicted_conflicts: Vec<Prediction>,
}

#[derive(Serialize)]
struct StreamJson {
    name: String,
    /// `pending`, `running`, `waiting`, `integrated`, `failed`, `skipped`.
    state: String,
    /// The task running now (1-based), if any.
    task: Option<usize>,
    tasks: usize,
    elapsed_ms: Option<u64>,
    commits: usize,
    last_message: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize)]
struct HaltJson {
    stream: String,
    files: Vec<String>,
    base: String,
    ours: String,
    theirs: String,
    bundle: String,
    resolution_worktree: String,
}

pub fn status(ctx: &Context, args: StatusArgs) -> Result<ExitCode> {
    let repo = load::open_repo(ctx)?;
    let state_dir = StateDir::new(repo.common_dir());
    let Some((_, state)) = state_dir.current()? else {
        if args.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&StatusJson {
                    schema: STATUS_SCHEMA,
                    run: None
                })
                .unwrap_or_default()
            );
        } else {
            ctx.ui
                .info("no streams run in this repository yet: start one with `streams run`");
        }
        return Ok(ExitCode::Success);
    };
    let holder = lock::current_holder(&state_dir);
    let run = build(&repo, &state, holder);
    if args.json {
        let json = StatusJson {
            schema: STATUS_SCHEMA,
            run: Some(run),
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        print!("{}", render(&run));
    }
    Ok(ExitCode::Success)
}

fn build(repo: &Repo, state: &RunState, holder: Option<lock::Holder>) -> RunJson {
    let now = now_ms();
    let phase = match (&state.phase, &holder) {
        // Saved as running but nobody holds the lock: the coordinator died.
        (RunPhase::Running, None) => "interrupted".to_string(),
        (phase, _) => phase.name().to_string(),
    };
    let outcome = matches!(state.phase, RunPhase::Finished)
        .then(|| crate::report::summary::status_of(state).to_string());
    let streams = state
        .streams
        .iter()
        .map(|s| {
            let running = s
                .tasks
                .iter()
                .position(|t| matches!(t.state, TaskState::Running { .. }));
            let (word, elapsed, reason) = match &s.state {
                StreamState::Pending => ("pending", None, None),
                StreamState::Active { started_at } => (
                    if running.is_some() {
                        "running"
                    } else {
                        "waiting"
                    },
                    Some(now.saturating_sub(*started_at)),
                    None,
                ),
                StreamState::Done {
                    started_at,
                    finished_at,
                } => (
                    "integrated",
                    Some(finished_at.saturating_sub(*started_at)),
                    None,
                ),
                StreamState::Failed { reason, .. } => ("failed", None, Some(reason.clone())),
                StreamState::Skipped { reason } => ("skipped", None, Some(reason.clone())),
            };
            // Commits so far: from where the stream started to its branch now (live while a
            // task runs; the agent's own commits show up as it makes them).
            let start = s.tasks.iter().find_map(|t| match &t.state {
                TaskState::Running { start, .. }
                | TaskState::Committed { start, .. }
                | TaskState::Integrated { start, .. } => Some(start.clone()),
                _ => None,
            });
            // While a task runs, its agent's commits are in the stream's workspace (a private
            // repository) until the task ends: read them there.
            let workspace = (running.is_some() && crate::git::workspace::is_workspace(&s.worktree))
                .then(|| {
                    crate::git::Repo::at_common_dir(
                        &crate::git::workspace::git_dir(&s.worktree),
                        Some(s.worktree.clone()),
                    )
                });
            let repo = workspace.as_ref().unwrap_or(repo);
            let tip = repo.ref_target(&s.branch).ok().flatten();
            let recorded: usize = s
                .tasks
                .iter()
                .filter_map(|t| t.state.stats())
                .map(|st| st.commits)
                .sum();
            let live = match (&running, &tip) {
                (Some(t), Some(tip)) => match &s.tasks[*t].state {
                    TaskState::Running { start, .. } => {
                        refs::count_commits(repo, start, tip).unwrap_or(0)
                    }
                    _ => 0,
                },
                _ => 0,
            };
            let last_message = match (&start, &tip) {
                (Some(_), Some(tip)) if *tip != state.base => {
                    repo.commit_info(tip).ok().map(|c| c.subject().to_string())
                }
                _ => None,
            };
            StreamJson {
                name: s.name.clone(),
                state: word.to_string(),
                task: running.map(|t| t + 1),
                tasks: s.tasks.len(),
                elapsed_ms: elapsed,
                commits: recorded + live,
                last_message,
                reason,
            }
        })
        .collect();
    let halt = match &state.phase {
        RunPhase::Halted(h) => Some(HaltJson {
            stream: state.streams[h.unit.stream].name.clone(),
            files: h.files.clone(),
            base: h.base.to_string(),
            ours: h.ours.to_string(),
            theirs: h.theirs.to_string(),
            bundle: h.bundle.display().to_string(),
            resolution_worktree: h.resolution_worktree.display().to_string(),
        }),
        _ => None,
    };
    // Conflicts ahead: streams whose work is not integrated yet, against each other and the tip.
    let predicted = if state.phase.is_over() {
        Vec::new()
    } else {
        let branches: Vec<(String, crate::git::Oid)> = state
            .streams
            .iter()
            .filter(|s| {
                matches!(
                    s.state,
                    StreamState::Active { .. } | StreamState::Failed { .. }
                )
            })
            .filter_map(|s| {
                repo.ref_target(&s.branch)
                    .ok()
                    .flatten()
                    .map(|tip| (s.name.clone(), tip))
            })
            .filter(|(_, tip)| *tip != state.integration_tip)
            .collect();
        let tip = ("integration".to_string(), state.integration_tip.clone());
        coordinator::predict(repo, &branches, Some(&tip))
            .map(|(p, _)| p)
            .unwrap_or_default()
    };
    RunJson {
        id: state.run_id.clone(),
        plan: state.plan_name.clone(),
        phase,
        outcome,
        holder,
        base: state.base.to_string(),
        integration_branch: crate::layout::short_branch(&state.integration_ref).to_string(),
        integration_tip: state.integration_tip.to_string(),
        started_at: state.started_at,
        streams,
        halt,
        predicted_conflicts: predicted,
    }
}

fn render(run: &RunJson) -> String {
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
