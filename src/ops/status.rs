//! `status`: where the current or last run stands, per stream, read from its state and the
//! refs (live while a run is going: the agents' commits show up as they make them).

use crate::coordinator;
use crate::error::Result;
use crate::git::{Repo, refs};
use crate::ledger::Tally;
use crate::report::runs_view::Choice;
use crate::report::status_view::{
    CulpritStatus, FlakyStatus, GateStatus, LandedStatus, ParkedStatus, PredictedConflict,
    RunStatus, STATUS_SCHEMA, Status, StreamStatus, VerdictStatus, WaitingStatus,
};
use crate::report::stream_word;

use super::runs::{Selector, Want};
use crate::state::{
    RunDir, RunPhase, RunState, StateDir, StreamRecord, StreamState, TaskState, lock, now_ms,
};

/// The run `selector` names, or the last one (none if no run ever started here), and which was
/// picked when there was a choice. Reads only: no lock is taken, so this works while a run is
/// going.
pub fn status(repo: &Repo, selector: &Selector) -> Result<(Status, Option<Choice>)> {
    let state_dir = StateDir::new(repo.common_dir());
    // A run the command line names must be there; without a name, none is no error.
    let picked = if selector.plan.is_some() || selector.run.is_some() {
        Some(super::runs::pick(repo, selector, Want::Any, "show")?)
    } else {
        super::runs::pick_optional(repo, selector, Want::Any)?
    };
    let (run, choice) = match picked {
        Some(picked) => {
            let holder = lock::current_holder(&state_dir, &picked.state.plan_name);
            (Some(build(repo, &picked.state, holder)), picked.choice)
        }
        None => (None, None),
    };
    Ok((
        Status {
            schema: STATUS_SCHEMA,
            run,
        },
        choice,
    ))
}

/// Reads the state's view of the run and completes it from the refs. Nothing here fails: a ref
/// that cannot be read shows as no commits.
pub fn build(repo: &Repo, state: &RunState, holder: Option<lock::Holder>) -> RunStatus {
    let live = matches!(state.phase, RunPhase::Running) && holder.is_some();
    let run_dir = StateDir::new(repo.common_dir()).run_dir(&state.run_id);
    // A run saved as running that nobody holds lost its coordinator (a crash, `kill -9`): it
    // saved nothing as it died, so its streams ran until its last sign of life, not its last
    // save (which may be when their task started).
    let died = matches!(state.phase, RunPhase::Running) && holder.is_none();
    // One a signal stopped saved its state as it stopped.
    let signal = match &state.phase {
        RunPhase::Interrupted { signal } => Some(signal.clone()),
        _ => None,
    };
    let stopped_at = if died {
        Some(last_sign_of_life(&run_dir, state))
    } else {
        signal.is_some().then_some(state.updated_at)
    };
    // Time stands still in a run nobody is running (interrupted, halted, over): a stream's
    // clock stops where the run stopped.
    let now = if live {
        now_ms()
    } else {
        stopped_at.unwrap_or(state.updated_at)
    };
    let phase = state.phase.seen(holder.is_some()).to_string();
    let outcome = matches!(state.phase, RunPhase::Finished)
        .then(|| crate::report::summary::status_of(state).to_string());
    let streams: Vec<StreamStatus> = state
        .streams
        .iter()
        .map(|s| stream_status(repo, &run_dir, state, s, now, live))
        .collect();
    let streams_cost: Vec<Tally> = streams.iter().filter_map(|s| s.cost.clone()).collect();
    let mut skipped = Vec::new();
    if state.no_check {
        skipped.push("check");
    }
    if state.no_gate {
        skipped.push("gate");
    }
    RunStatus {
        id: state.run_id.clone(),
        plan: state.plan_name.clone(),
        phase,
        outcome,
        holder,
        stopped_at,
        signal,
        last_holder: (died || stopped_at.is_some())
            .then(|| lock::last_holder(&StateDir::new(repo.common_dir()), &state.plan_name))
            .flatten()
            .filter(|h| h.run_id.as_deref() == Some(state.run_id.as_str())),
        base: state.base.to_string(),
        integration_branch: crate::layout::short_branch(&state.integration_ref).to_string(),
        // An aborted run's tip is gone from the branch: what the branch holds now is shown.
        integration_tip: match &state.phase {
            RunPhase::Aborted { .. } => repo
                .ref_target(&state.integration_ref)
                .ok()
                .flatten()
                .map(|tip| tip.to_string()),
            _ => Some(state.integration_tip.to_string()),
        },
        started_at: state.started_at,
        streams,
        parked: parked_status(state),
        integration_order: integration_order(state),
        predicted_conflicts: predicted_conflicts(repo, state),
        gate: gate_status(state),
        skipped,
        cost: {
            let mut total = crate::ledger::Tally::default();
            for s in &streams_cost {
                total.add(s);
            }
            (!total.is_empty()).then_some(total)
        },
        budget_warnings: state.budget_warnings.iter().map(|w| w.line()).collect(),
    }
}

/// When the coordinator of a run it left saved as running was last seen at work: the latest of
/// its last save, its journal's last entry and its last write to a log (it copies its agents'
/// output as it comes, so a log's modification time is a moment it was alive; an agent that
/// outlives it writes to nothing here).
fn last_sign_of_life(run_dir: &RunDir, state: &RunState) -> u64 {
    fn modified_ms(path: &std::path::Path) -> Option<u64> {
        let modified = std::fs::metadata(path).ok()?.modified().ok()?;
        let since = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
        u64::try_from(since.as_millis()).ok()
    }
    let logs = run_dir.path().join("logs");
    // logs/<stream>/<file> (and logs/.gate/<file>).
    let log_files = std::fs::read_dir(&logs)
        .into_iter()
        .flatten()
        .filter_map(|dir| dir.ok())
        .flat_map(|dir| std::fs::read_dir(dir.path()).into_iter().flatten())
        .filter_map(|file| file.ok())
        .filter_map(|file| modified_ms(&file.path()));
    std::iter::once(state.updated_at)
        .chain(modified_ms(&run_dir.journal_path()))
        .chain(log_files)
        .max()
        .unwrap_or(state.updated_at)
}

/// One stream as `status` shows it: its state word, where its tasks are, and its commits so
/// far (live while a task runs: the agent's own commits show up as it makes them).
fn stream_status(
    repo: &Repo,
    run_dir: &RunDir,
    state: &RunState,
    s: &StreamRecord,
    now: u64,
    live: bool,
) -> StreamStatus {
    let running = s
        .tasks
        .iter()
        .position(|t| matches!(t.state, TaskState::Running { .. }));
    let word = match (&state.phase, &s.state) {
        // Abort stopped it and took its work off the integration branch (kept, see `abort`).
        (
            RunPhase::Aborted { .. },
            StreamState::Done { .. }
            | StreamState::Active { .. }
            | StreamState::Parked(_)
            | StreamState::Pending,
        ) => "aborted",
        // The workspace's `setup` runs before the task's agent.
        // Its agent was stopped with the run (a crash, kill -9, Ctrl-C): nothing runs it now.
        (_, StreamState::Active { .. }) if !live && running.is_some() => "interrupted",
        (_, StreamState::Active { .. }) if s.setting_up => "setting up",
        _ => stream_word(&s.state, Some(running.is_some())),
    };
    let (elapsed, reason) = match &s.state {
        StreamState::Pending => (None, waits_on_parked(state, s)),
        StreamState::Active { started_at } => (Some(now.saturating_sub(*started_at)), None),
        StreamState::Parked(park) if !state.phase.is_over() => (
            Some(park.parked_at.saturating_sub(park.started_at)),
            Some(format!(
                "conflicts in {}: parked for a person",
                crate::report::quote_paths(&park.files)
            )),
        ),
        StreamState::Parked(park) => (Some(park.parked_at.saturating_sub(park.started_at)), None),
        StreamState::Done {
            started_at,
            finished_at,
        } => (Some(finished_at.saturating_sub(*started_at)), None),
        StreamState::Failed { reason, .. }
        | StreamState::Skipped { reason, .. }
        | StreamState::Stopped { reason, .. } => (None, Some(reason.clone())),
    };
    // Commits so far: from where the stream started to its branch now.
    let start = s.tasks.iter().find_map(|t| match &t.state {
        TaskState::Running { start, .. }
        | TaskState::Committed { start, .. }
        | TaskState::Integrated { start, .. } => Some(start.clone()),
        _ => None,
    });
    // While a task runs, its agent's commits are in the stream's workspace (a private
    // repository) until the task ends: read them there.
    let workspace = running
        .is_some()
        .then(|| crate::workspace::Workspace::find(repo, &s.worktree).agent_repo())
        .flatten();
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
            TaskState::Running { start, .. } => refs::count_commits(repo, start, tip).unwrap_or(0),
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
    let waiting = running
        .and_then(|t| s.tasks[t].waiting.as_ref())
        .map(|w| WaitingStatus {
            until: w.until,
            reset_known: w.reset_known,
            message: w.message.clone(),
        });
    let activity = running
        .filter(|_| waiting.is_none())
        .and_then(|t| last_activity(run_dir, s, t));
    let cost = stream_cost(run_dir, s, running);
    StreamStatus {
        name: s.name.clone(),
        state: word.to_string(),
        task: running.map(|t| t + 1),
        tasks: s.tasks.len(),
        tasks_done: s.tasks.iter().filter(|t| t.state.range().is_some()).count(),
        elapsed_ms: elapsed,
        started_from: start.as_ref().map(|s| s.to_string()),
        commits: recorded + live,
        last_message,
        reason,
        checks: state
            .checks
            .iter()
            .filter(|c| c.stream == s.name)
            .map(|c| VerdictStatus {
                task: Some(c.task),
                streams: None,
                passed: c.passed,
                result: c.result.clone(),
                log: c.log.display().to_string(),
                again: false,
            })
            .collect(),
        activity,
        waiting,
        cost,
    }
}

/// The last action of task `t`'s agent (tool and target), read from the end of its log by the
/// parser of whichever preset's events it holds; `None` for an agent that prints none.
/// What a stream's agents used: what the state records, and for the attempt running now what
/// its output shows so far.
fn stream_cost(run_dir: &RunDir, s: &StreamRecord, running: Option<usize>) -> Option<Tally> {
    let mut tally = Tally::default();
    for t in &s.tasks {
        tally.add(&crate::ledger::task_tally(t));
    }
    if let Some(t) = running {
        let output = crate::agent::log::last_attempt(&run_dir.log_path(&s.name, t), 64 << 20);
        if let Some(live) = crate::ledger::meter::read_any(&output) {
            tally.attempts += 1;
            tally.usage(&live);
        }
    }
    (!tally.is_empty()).then_some(tally)
}

fn last_activity(run_dir: &RunDir, s: &StreamRecord, t: usize) -> Option<String> {
    let output = crate::agent::log::last_attempt(&run_dir.log_path(&s.name, t), 256 * 1024);
    crate::agent::events::last_activity_of_any(&output, Some(&s.worktree)).map(|a| a.to_string())
}

/// The gate's runs and culprits. The state keeps the gate's runs, not the plan: a gate shows
/// once it has run.
fn gate_status(state: &RunState) -> Option<GateStatus> {
    state.gates.first().map(|first| GateStatus {
        command: first.command.clone(),
        runs: state
            .gates
            .iter()
            .map(|g| VerdictStatus {
                task: None,
                streams: Some(g.streams.clone()),
                passed: g.passed,
                result: g.result.clone(),
                log: g.log.display().to_string(),
                again: g.again,
            })
            .collect(),
        culprits: state
            .bisections
            .iter()
            .map(|b| CulpritStatus {
                stream: b.culprit.clone(),
                green: b.green.to_string(),
                steps: b.steps.len(),
            })
            .collect(),
        flaky: state
            .flaky
            .iter()
            .map(|f| FlakyStatus {
                streams: f.streams.clone(),
                runs: f
                    .runs
                    .iter()
                    .map(|r| VerdictStatus {
                        task: None,
                        streams: Some(f.streams.clone()),
                        passed: r.passed,
                        result: r.result.clone(),
                        log: r.log.display().to_string(),
                        again: false,
                    })
                    .collect(),
                outcome: f.outcome.clone(),
            })
            .collect(),
    })
}

/// The streams parked on conflicts, in the order they parked. An aborted run's parked streams
/// wait for nobody (abort kept what their worktrees held).
fn parked_status(state: &RunState) -> Vec<ParkedStatus> {
    if state.phase.is_over() {
        return Vec::new();
    }
    state
        .parked()
        .into_iter()
        .map(|(i, s, h)| ParkedStatus {
            stream: s.name.clone(),
            parked_at: h.parked_at,
            waiting: waiting_on(state, i),
            files: h.files.clone(),
            base: h.base.to_string(),
            ours: h.ours.to_string(),
            theirs: h.theirs.to_string(),
            bundle: h.bundle.display().to_string(),
            resolution_worktree: h.resolution_worktree.display().to_string(),
            resolution_worktree_exists: h.resolution_worktree.exists(),
            resolver: h
                .proposal
                .as_ref()
                .map(|p| crate::report::status_view::ResolverStatus {
                    resolver: p.resolver.clone(),
                    mode: p.mode.clone(),
                    commit: p.commit.as_ref().map(|c| c.to_string()),
                    refused: p.refused.clone(),
                    log: p.attempt.log.display().to_string(),
                }),
        })
        .collect()
}

/// The units on the integration branch in the order they landed (none once an abort took them
/// off it).
fn integration_order(state: &RunState) -> Vec<LandedStatus> {
    if matches!(state.phase, RunPhase::Aborted { .. }) {
        return Vec::new();
    }
    state
        .integrations
        .iter()
        .map(|l| LandedStatus {
            stream: l.stream.clone(),
            tasks: (l.first..=l.last).map(|t| t + 1).collect(),
            tip: l.tip.to_string(),
            parked: l.parked,
        })
        .collect()
}

/// The streams not at an end that wait on stream `s` (directly or not), in plan order.
fn waiting_on(state: &RunState, s: usize) -> Vec<String> {
    let mut waiting: Vec<usize> = Vec::new();
    let mut next = vec![state.streams[s].name.as_str()];
    while let Some(name) = next.pop() {
        for (i, record) in state.streams.iter().enumerate() {
            if record.depends_on.iter().any(|d| d == name)
                && !record.state.is_terminal()
                && !waiting.contains(&i)
            {
                waiting.push(i);
                next.push(record.name.as_str());
            }
        }
    }
    waiting.sort_unstable();
    waiting
        .into_iter()
        .map(|i| state.streams[i].name.clone())
        .collect()
}

/// Why a pending stream has not started, when it waits on a parked stream (directly or not).
fn waits_on_parked(state: &RunState, stream: &StreamRecord) -> Option<String> {
    let parked: Vec<String> = state
        .parked()
        .into_iter()
        .filter(|(i, _, _)| waiting_on(state, *i).contains(&stream.name))
        .map(|(_, s, _)| format!("`{}`", s.name))
        .collect();
    (!parked.is_empty()).then(|| format!("waits for {} (parked on a conflict)", parked.join(", ")))
}

/// Conflicts ahead, while the run is not over: streams whose work is not integrated yet,
/// against each other and the integration tip.
fn predicted_conflicts(repo: &Repo, state: &RunState) -> Vec<PredictedConflict> {
    if state.phase.is_over() {
        return Vec::new();
    }
    let branches: Vec<(String, crate::ids::Oid)> = state
        .streams
        .iter()
        .filter(|s| {
            matches!(
                s.state,
                StreamState::Active { .. } | StreamState::Parked(_) | StreamState::Failed { .. }
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
        .map(|(predicted, _)| {
            predicted
                .into_iter()
                .map(|p| PredictedConflict {
                    left: p.left,
                    right: p.right,
                    files: p.files,
                })
                .collect()
        })
        .unwrap_or_default()
}
