//! How a session of the engine ended, as the lines a person reads at the end of `run`,
//! `resume`, `continue` and `skip`: the summary table and what to do next.

use super::summary::{self, RunReport};
use super::{Ui, hints};
use crate::error::{Finish, Outcome};
use crate::state::{RunDir, RunPhase, RunState, StreamState};
use crate::text::{quote_paths, short};

/// Prints how the session ended and what to do next. `plan_flag` (` --plan NAME`, or empty when
/// no other plan ran here) goes into the commands it suggests, so that they act on this run.
pub fn ended(
    ui: &Ui,
    finish: &Finish,
    state: &RunState,
    report: &RunReport,
    run_dir: &RunDir,
    plan_flag: &str,
) {
    // One stream on a CI machine: its integration is private; what counts is its branch,
    // which goes to the central job.
    if let (
        Some(crate::state::Machines::Stream { stream, push, .. }),
        Finish::Settled { halted: false, .. },
    ) = (&state.machines, finish)
    {
        ui.info("");
        ui.info(summary::render_table(report, ui).trim_end());
        ui.info("");
        let record = state.stream_by_name(stream).map(|(_, r)| r);
        let tip = record.map(|r| crate::layout::short_branch(&r.branch).to_string());
        if finish.has(Outcome::Failed) {
            ui.always(format!(
                "{} stream `{stream}` failed on this machine; its manifest and kept work still go to the central job",
                ui.red("failed:")
            ));
        } else {
            ui.always(format!(
                "{} stream `{stream}` done on this machine ({})",
                ui.green("ok:"),
                tip.unwrap_or_default()
            ));
        }
        if push.is_none() {
            ui.info("nothing is pushed (no --push): `streams integrate` cannot see it");
        }
        ui.info(format!("report: {}", run_dir.report_md_path().display()));
        return;
    }
    match finish {
        Finish::Settled { halted: false, .. } => {
            finished(ui, finish, state, report, run_dir, plan_flag)
        }
        Finish::Settled { halted: true, .. } => halted(ui, state, report),
        Finish::Interrupted(_) => ui.always(hints::INTERRUPTED_NOW),
    }
}

/// The streams of `state` that were stopped (by `streams stop`, or a limit), by name.
fn stopped_streams(state: &RunState) -> Vec<&str> {
    state
        .streams
        .iter()
        .filter(|s| matches!(s.state, StreamState::Stopped { .. }))
        .map(|s| s.name.as_str())
        .collect()
}

/// Every stream reached an end: the table, the result, and what to do next.
fn finished(
    ui: &Ui,
    finish: &Finish,
    state: &RunState,
    report: &RunReport,
    run_dir: &RunDir,
    plan_flag: &str,
) {
    let branch = crate::layout::short_branch(&state.integration_ref);
    ui.info("");
    // The table is detail: `-q` leaves only the result line below (and errors).
    ui.info(summary::render_table(report, ui).trim_end());
    ui.info("");
    let done = report
        .streams
        .iter()
        .filter(|s| s.status == "integrated")
        .count();
    // Left out by the person: named, not counted as failures.
    let left_out: Vec<&str> = state
        .streams
        .iter()
        .filter(|s| matches!(s.state, StreamState::Skipped { chosen: true, .. }))
        .map(|s| s.name.as_str())
        .collect();
    // The line says the outcome whose exit code wins (failed before stopped); the hints
    // below cover each.
    let failed = finish.has(Outcome::Failed);
    let stopped = !failed && finish.has(Outcome::Stopped);
    let skipped = !failed && !stopped && finish.has(Outcome::LeftOut);
    if skipped {
        ui.always(format!(
            "{} {done} of {} streams integrated on {branch} ({}); left out as you chose: {}",
            ui.green("ok:"),
            report.streams.len(),
            short(&state.integration_tip),
            left_out.join(", ")
        ));
    } else if stopped {
        ui.always(format!(
            "{} {done} of {} streams integrated on {branch} ({}); stopped, work kept: {}",
            ui.yellow("stopped:"),
            report.streams.len(),
            short(&state.integration_tip),
            stopped_streams(state).join(", ")
        ));
    } else if !failed {
        let all = match report.streams.len() {
            1 => "the stream".to_string(),
            n => format!("all {n} streams"),
        };
        ui.always(format!(
            "{} {all} integrated on {branch} ({})",
            ui.green("ok:"),
            short(&state.integration_tip)
        ));
    } else {
        ui.always(format!(
            "{} {done} of {} streams integrated on {branch}; the others failed or were skipped",
            ui.red("failed:"),
            report.streams.len()
        ));
    }
    ui.info(format!(
        "stream branches: streams/{}/<stream>; report: {}",
        state.plan_name,
        run_dir.report_md_path().display()
    ));
    // The central job of a run over machines says itself what comes next (what it
    // pushed, what is missing); merging and retrying are not done there.
    if matches!(
        state.machines,
        Some(crate::state::Machines::Integrate { .. })
    ) {
        return;
    }
    ui.info("next:");
    // Nothing integrated: nothing to review or take.
    if report.streams.iter().any(|s| s.status == "integrated") {
        ui.info(format!(
            "  git log --stat {}..{branch}    # review what was integrated",
            short(&state.base)
        ));
        ui.info(hints::take_result(plan_flag));
    }
    if failed {
        // The failed ones: `--with-dependents` brings the streams they held back.
        let mut unfinished: Vec<&str> = report
            .streams
            .iter()
            .filter(|s| s.status == "failed")
            .map(|s| s.name.as_str())
            .collect();
        if unfinished.is_empty() {
            unfinished = report
                .streams
                .iter()
                .filter(|s| s.status != "integrated")
                .map(|s| s.name.as_str())
                .collect();
        }
        ui.info(hints::retry_failed(
            &unfinished,
            plan_flag,
            has_dependents(state, &unfinished),
            &run_dir.path().join("logs"),
        ));
    }
    if !failed && !left_out.is_empty() {
        ui.info(format!(
            "  streams retry {}{plan_flag}{}    # run what you left out after all, on top of this result",
            left_out.join(" "),
            with_dependents(state, &left_out)
        ));
    }
    let stopped = stopped_streams(state);
    if !failed && !stopped.is_empty() {
        ui.info(format!(
            "  streams retry {}{plan_flag}{}    # continue what was stopped (after a usage limit: once it has reset; after a budget: raise it with --budget or --max-cost), on top of this result",
            stopped.join(" "),
            with_dependents(state, &stopped)
        ));
    }
    ui.info(format!(
        "  streams clean{plan_flag}    # remove the worktrees and stream branches"
    ));
}

/// Nothing else can move while streams are parked: the table (every stream's outcome), then
/// each parked stream with its bundle and how to resolve it.
fn halted(ui: &Ui, state: &RunState, report: &RunReport) {
    let branch = crate::layout::short_branch(&state.integration_ref);
    ui.info("");
    ui.info(summary::render_table(report, ui).trim_end());
    let parked = state.parked();
    let done = report
        .streams
        .iter()
        .filter(|s| s.status == "integrated")
        .count();
    let failed: Vec<&str> = report
        .streams
        .iter()
        .filter(|s| s.status == "failed")
        .map(|s| s.name.as_str())
        .collect();
    let also = if failed.is_empty() {
        String::new()
    } else {
        format!("; failed: {}", failed.join(", "))
    };
    ui.always("");
    ui.always(format!(
        "{} {}; {done} of {} streams integrated on {branch} ({}){also}",
        ui.red("halted:"),
        hints::parked_list(state),
        report.streams.len(),
        short(&state.integration_tip),
    ));
    for (_, stream, park) in &parked {
        let name = &stream.name;
        ui.always("");
        ui.always(format!(
            "parked `{name}`: integrating it conflicts in {}",
            quote_paths(&park.files)
        ));
        ui.always(format!(
            "  conflict bundle: {}",
            park.bundle.join("README.md").display()
        ));
        ui.always(format!(
            "  resolve in:      {}",
            park.resolution_worktree.display()
        ));
        let proposed = park.proposal.as_ref().is_some_and(|p| p.refused.is_none());
        for line in hints::parked_steps(name, &park.resolution_worktree, &park.files, proposed) {
            ui.always(line);
        }
    }
    let waiting: Vec<&str> = state
        .streams
        .iter()
        .filter(|s| matches!(s.state, StreamState::Pending))
        .map(|s| s.name.as_str())
        .collect();
    ui.always("");
    if !waiting.is_empty() {
        ui.always(format!(
            "waiting on {}: {}",
            if parked.len() == 1 { "it" } else { "them" },
            waiting.join(", ")
        ));
    }
    ui.always("or stop the run: streams abort");
}

/// Prints what `abort` did: where the integration branch is, and every ref that keeps work.
/// `plan_flag` as for [`ended`]: a bare `streams clean` could clean another plan's run.
pub fn aborted(
    ui: &Ui,
    state: &RunState,
    kept: &[(String, String)],
    restored: Option<&str>,
    plan_flag: &str,
) {
    let branch = crate::layout::short_branch(&state.integration_ref);
    ui.always(format!(
        "aborted run {} of plan `{}`",
        state.run_id, state.plan_name
    ));
    match restored {
        Some(before) => ui.info(format!("{branch} is back at {}", short(before))),
        None => ui.info(format!(
            "{branch} is removed (it did not exist before the run)"
        )),
    }
    if kept.is_empty() {
        ui.info("no work was lost: nothing had been done yet");
    } else {
        ui.info("kept (nothing is lost):");
        for (name, oid) in kept {
            ui.info(format!("  {name}  {}", short(oid)));
        }
    }
    ui.info(format!(
        "stream branches stay as they are: streams/{}/<stream>; `streams clean{plan_flag}` removes worktrees",
        state.plan_name
    ));
}

/// Prints what `retry` is about to run again, from where, and what it kept first.
pub fn retrying(ui: &Ui, state: &RunState, streams: &[String], kept: &[(String, String)]) {
    ui.info(format!(
        "retrying {} on top of {} ({})",
        streams.join(", "),
        crate::layout::short_branch(&state.integration_ref),
        short(&state.integration_tip)
    ));
    for (name, oid) in kept {
        ui.info(format!(
            "  kept what it held before: {name}  {}",
            short(oid)
        ));
    }
}

/// What `retry` says about the plan as it is now: what changed since the run started (and is
/// used from now on), or that nothing did.
pub fn plan_changes(ui: &Ui, path: &std::path::Path, changes: &[String]) {
    if changes.is_empty() {
        ui.info(format!(
            "{}: unchanged since the run started",
            path.display()
        ));
        return;
    }
    ui.always(format!(
        "{} changed since the run started; retrying with it as it is now:",
        path.display()
    ));
    for change in changes {
        ui.always(format!("  {change}"));
    }
}

/// How `streams stop` ended (see `ops::stop`).
#[derive(Debug)]
pub enum Stopped {
    /// The stream is stopped; `kept`: the ref that keeps its unfinished task's work.
    Stopped { kept: Option<String> },
    /// It ended otherwise before it could be stopped (`integrated`, `failed`).
    Ended { word: &'static str },
    /// Asked, but it had not stopped when `stop` gave up waiting.
    Asked { pid: u32 },
}

/// What `streams stop` says.
pub fn stopped(ui: &Ui, state: &RunState, stream: &str, stopped: &Stopped) {
    match stopped {
        Stopped::Stopped { kept } => {
            ui.always(format!(
                "stopped {stream}; the rest of run {} goes on",
                state.run_id
            ));
            if let Some(kept) = kept {
                ui.info(format!("its unfinished work is kept on {kept}"));
            }
            ui.hint(format!(
                "once the run has finished, `streams retry {stream}` continues it"
            ));
        }
        Stopped::Ended { word } => ui.always(format!(
            "stream {stream} ended before it could be stopped: it is {word}"
        )),
        Stopped::Asked { pid } => ui.always(format!(
            "asked the run's coordinator (pid {pid}) to stop {stream}; it stops once its agent has exited (`streams status` shows it)"
        )),
    }
}

/// What `merge` did.
#[derive(Debug)]
pub struct Merged {
    /// The plan whose run it was.
    pub plan: String,
    /// The branch's short name.
    pub branch: String,
    /// The integration branch's short name and tip.
    pub from: String,
    pub tip: crate::ids::Oid,
    pub how: How,
    /// The checkout that was updated, when the branch is checked out somewhere.
    pub checkout: Option<std::path::PathBuf>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum How {
    /// The branch held the result already.
    UpToDate,
    FastForward {
        was: crate::ids::Oid,
    },
    MergeCommit {
        was: crate::ids::Oid,
        commit: crate::ids::Oid,
    },
    /// The run's commits replayed on top of the branch (it had moved by another plan's
    /// result); `commit` is the new tip.
    Rebased {
        was: crate::ids::Oid,
        commit: crate::ids::Oid,
        commits: usize,
    },
}

impl How {
    /// How the branch took the result, in one word (kept in the run's state).
    pub fn word(&self) -> &'static str {
        match self {
            How::UpToDate => "up-to-date",
            How::FastForward { .. } => "fast-forward",
            How::MergeCommit { .. } => "merge",
            How::Rebased { .. } => "rebase",
        }
    }
}

/// Prints what `merge` did to the user's branch.
pub fn merged(ui: &Ui, merged: &Merged) {
    let (branch, from) = (&merged.branch, &merged.from);
    let line = match &merged.how {
        How::UpToDate => format!(
            "{branch} holds {from} ({}) already: nothing to merge",
            short(&merged.tip)
        ),
        How::FastForward { was } => format!(
            "{branch} fast-forwarded from {} to {from} ({})",
            short(was),
            short(&merged.tip)
        ),
        How::MergeCommit { was, commit } => format!(
            "{branch} was at {}: merged {from} ({}) with merge commit {}",
            short(was),
            short(&merged.tip),
            short(commit)
        ),
        How::Rebased {
            was,
            commit,
            commits,
        } => format!(
            "{branch} was at {} (another plan's result): replayed the {commits} commit(s) of {from} ({}) on top, now at {}",
            short(was),
            short(&merged.tip),
            short(commit)
        ),
    };
    ui.always(line);
    if merged.how != How::UpToDate {
        match &merged.checkout {
            Some(path) => ui.info(format!("updated the checkout in {}", path.display())),
            None => ui.info(format!(
                "{branch} is checked out nowhere: no files were touched"
            )),
        }
        ui.info(format!(
            "next: `streams clean --plan {}` removes the run's worktrees and branches",
            merged.plan
        ));
    }
}

/// What a run spread over machines handed on: the remote, the refs pushed there, and the
/// outputs its CI job reports.
pub struct Handed<'a> {
    pub remote: &'a str,
    pub refs: &'a [String],
    pub outputs: &'a [(&'static str, String)],
}

/// What a run spread over machines handed on once finished: the refs pushed to `remote` and
/// the job's outputs (`pushed`), and for the central integration the streams whose machines
/// pushed nothing.
pub fn published(ui: &Ui, state: &RunState, pushed: Option<Handed<'_>>) {
    if let Some(handed) = pushed {
        if handed.refs.is_empty() {
            ui.info(format!("nothing to push to {}", handed.remote));
        } else {
            ui.info(format!("pushed to {}:", handed.remote));
        }
        for name in handed.refs {
            ui.info(format!("  {}", crate::layout::short_branch(name)));
        }
        for (key, value) in handed.outputs {
            ui.info(format!("job output: {key}={value}"));
        }
    }
    let Some(crate::state::Machines::Integrate {
        remote,
        run_id,
        stage,
        missing,
        ..
    }) = &state.machines
    else {
        return;
    };
    if state.phase != RunPhase::Finished || missing.is_empty() {
        return;
    }
    let names: Vec<String> = missing.iter().map(|m| format!("`{m}`")).collect();
    ui.error(match names.len() {
        1 => format!(
            "stream {} is missing: its machine pushed nothing to {remote} for run {run_id}",
            names[0]
        ),
        _ => format!(
            "streams {} are missing: their machines pushed nothing to {remote} for run {run_id}",
            names.join(", ")
        ),
    });
    ui.hint(format!(
        "once {} pushed, run the same command again (`streams integrate --from {remote} --run-id {run_id}{}`): it integrates what arrived since",
        if missing.len() == 1 { "it has" } else { "they have" },
        stage.map(|k| format!(" --stage {k}")).unwrap_or_default()
    ));
}

/// Whether a stream of the run depends on one of `streams` (`retry --with-dependents` brings
/// it back too).
fn has_dependents(state: &RunState, streams: &[&str]) -> bool {
    state
        .streams
        .iter()
        .any(|s| s.depends_on.iter().any(|d| streams.contains(&d.as_str())))
}

/// ` --with-dependents` when a stream of the run depends on one of `streams`, else nothing.
fn with_dependents(state: &RunState, streams: &[&str]) -> &'static str {
    if has_dependents(state, streams) {
        " --with-dependents"
    } else {
        ""
    }
}
