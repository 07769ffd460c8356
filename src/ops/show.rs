//! `show`: what each stream of a run did, gathered from the run's state, its logs and the refs:
//! tasks, the commit a stream started from, its commits and diffstat, rejected and kept work,
//! check and gate runs, the conflict it halted on and its resolution.
//!
//! Also the two look-ups every review command starts with: which run (see [`super::runs`]),
//! and which stream of it.

use crate::agent::log::tail as log_tail;
use crate::error::{Error, Result};
use crate::git::{Repo, refs, review};
use crate::ids::Oid;
use crate::layout;
use crate::report::show_view::{
    CheckRun, CommitShow, ConflictShow, KeptRef, Rejection, RunHeader, SHOW_SCHEMA, Show,
    StreamShow, TaskShow,
};
use crate::report::stream_word;
use crate::report::timeline;
use crate::state::{
    Entry, FailReason, RunDir, RunState, SpanOutcome, StateDir, Step, StreamRecord, StreamState,
    TaskState, journal, lock,
};

/// Lines of each task's log that `show` includes.
pub const LOG_TAIL_LINES: usize = 5;

/// The run `--plan` / `--run` name, or the last one (see [`super::runs::pick`]).
pub fn find_run(repo: &Repo, selector: &super::runs::Selector) -> Result<super::runs::Picked> {
    super::runs::pick(repo, selector, super::runs::Want::Any, "show")
}

/// The stream of that name, or a usage error that lists the run's streams.
pub fn find_stream<'a>(state: &'a RunState, name: &str) -> Result<(usize, &'a StreamRecord)> {
    state.stream_by_name(name).ok_or_else(|| {
        let names: Vec<&str> = state.streams.iter().map(|s| s.name.as_str()).collect();
        Error::usage_with_hint(
            format!(
                "run {} of plan `{}` has no stream `{name}`",
                state.run_id, state.plan_name
            ),
            format!("its streams: {}", names.join(", ")),
        )
    })
}

/// Where a stream's work began: the start of its first task that started. A stream whose first
/// task failed before recording one started where its branch forks from the integration tip.
pub fn start_point(repo: &Repo, state: &RunState, stream: &StreamRecord) -> Option<Oid> {
    let recorded = stream.tasks.iter().find_map(|t| match &t.state {
        TaskState::Running { start, .. }
        | TaskState::Committed { start, .. }
        | TaskState::Integrated { start, .. } => Some(start.clone()),
        _ => None,
    });
    recorded.or_else(|| {
        if matches!(
            stream.state,
            StreamState::Pending | StreamState::Skipped { .. }
        ) {
            return None;
        }
        let tip = repo.ref_target(&stream.branch).ok().flatten()?;
        review::merge_base(repo, &tip, &state.integration_tip)
            .ok()
            .flatten()
    })
}

/// While a task runs, its agent's commits are in the stream's workspace (a private repository
/// borrowing the user's objects) until the task ends: that is where to read the branch then.
fn live_repo(repo: &Repo, stream: &StreamRecord) -> Option<Repo> {
    let running = stream
        .tasks
        .iter()
        .any(|t| matches!(t.state, TaskState::Running { .. }));
    running
        .then(|| crate::workspace::Workspace::find(repo, &stream.worktree).agent_repo())
        .flatten()
}

/// Where a stream's work ends: its branch (in its workspace while a task runs), or (once
/// `clean` removed the branch) the end of its last committed task.
pub fn end_point(repo: &Repo, stream: &StreamRecord) -> Option<Oid> {
    let live = live_repo(repo, stream);
    live.as_ref()
        .unwrap_or(repo)
        .ref_target(&stream.branch)
        .ok()
        .flatten()
        .or_else(|| {
            stream
                .tasks
                .iter()
                .rev()
                .find_map(|t| t.state.end().cloned())
        })
}

/// Every stream of the run (or only `only`), with everything `show` tells about it.
pub fn show(repo: &Repo, dir: &RunDir, state: &RunState, only: Option<&str>) -> Result<Show> {
    show_with(repo, dir, state, only, &review::Changes::files_only())
}

/// [`show`], reading each stream's change through `changes` (a page that shows the patches
/// too reads each range once).
pub fn show_with(
    repo: &Repo,
    dir: &RunDir,
    state: &RunState,
    only: Option<&str>,
    changes: &review::Changes,
) -> Result<Show> {
    let streams = match only {
        Some(name) => vec![find_stream(state, name)?.1],
        None => state.streams.iter().collect(),
    };
    let holder = lock::current_holder(&StateDir::new(repo.common_dir()), &state.plan_name);
    let resolutions = resolutions(dir);
    let kept = refs::refs_under(repo, &layout::kept_refs(&state.plan_name)).unwrap_or_default();
    let streams = streams
        .into_iter()
        .map(|s| stream_show(repo, dir, state, s, &kept, &resolutions, changes))
        .collect::<Result<Vec<_>>>()?;
    Ok(Show {
        schema: SHOW_SCHEMA,
        run: RunHeader {
            id: state.run_id.clone(),
            plan: state.plan_name.clone(),
            phase: state.phase.seen(holder.is_some()).to_string(),
            base: state.base.to_string(),
            integration_branch: layout::short_branch(&state.integration_ref).to_string(),
            integration_tip: state.integration_tip.to_string(),
            dir: dir.path().display().to_string(),
        },
        streams,
    })
}

/// The resolutions `continue` recorded, per stream, in order (from the journal).
fn resolutions(dir: &RunDir) -> Vec<(String, String)> {
    journal::read(&dir.journal_path())
        .into_iter()
        .filter_map(|e| match e {
            Entry::Resolved { stream, commit } => Some((stream, commit)),
            _ => None,
        })
        .collect()
}

fn stream_show(
    repo: &Repo,
    dir: &RunDir,
    state: &RunState,
    s: &StreamRecord,
    kept: &[(String, Oid)],
    resolutions: &[(String, String)],
    changes: &review::Changes,
) -> Result<StreamShow> {
    let running = s
        .tasks
        .iter()
        .any(|t| matches!(t.state, TaskState::Running { .. }));
    let reason = s.state.reason();
    let started_from = start_point(repo, state, s);
    let end = end_point(repo, s);
    // The workspace sees the user's objects too: it can read the whole range.
    let live = live_repo(repo, s);
    let repo = live.as_ref().unwrap_or(repo);
    let tip = repo.ref_target(&s.branch).ok().flatten();
    let (commits, files) = match (&started_from, &end) {
        (Some(from), Some(to)) => (
            review::commits_between(repo, from, to)?
                .into_iter()
                .map(|c| CommitShow {
                    subject: c.subject().to_string(),
                    author: c.author_name.clone(),
                    id: c.id.to_string(),
                })
                .collect(),
            changes.get(repo, from, to)?.files.clone(),
        ),
        _ => (Vec::new(), Vec::new()),
    };
    let tasks = s
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let spans: Vec<_> = timeline::task_spans(state, s, i).collect();
            // The timeline names the log it wrote; older runs have it at its usual place.
            let log = spans
                .iter()
                .rev()
                .find_map(|span| span.log.clone())
                .unwrap_or_else(|| dir.log_path(&s.name, i));
            let exists = log.exists();
            TaskShow {
                number: i + 1,
                text: t.summary.clone(),
                status: t.state.name().to_string(),
                attempts: t.attempts,
                time_ms: t.agent_ms,
                reason: match &t.state {
                    TaskState::Failed { reason, .. } => Some(reason.to_string()),
                    _ => None,
                },
                log_tail: if exists {
                    log_tail(&log, LOG_TAIL_LINES)
                } else {
                    Vec::new()
                },
                log: exists.then(|| log.display().to_string()),
                started_at: spans.iter().map(|span| span.started_at).min(),
                finished_at: spans.iter().map(|span| span.finished_at).max(),
                cost: crate::ledger::task_cost(&s.name, i, t),
            }
        })
        .collect();
    let rejections = s
        .tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.state {
            TaskState::Failed {
                reason: FailReason::Ownership { violations, kept },
                ..
            } => Some(Rejection {
                task: i + 1,
                paths: violations.clone(),
                kept: kept.clone(),
            }),
            _ => None,
        })
        .collect();
    // `refs/streams/<plan>/<kind>/<stream>/...`: the stream is the component after the kind.
    let prefix = layout::kept_refs(&state.plan_name);
    let kept = kept
        .iter()
        .filter(|(name, _)| {
            name.strip_prefix(&prefix)
                .and_then(|rest| rest.split('/').nth(1))
                == Some(s.name.as_str())
        })
        .map(|(name, commit)| KeptRef {
            name: name.clone(),
            commit: commit.to_string(),
        })
        .collect();
    let conflict = conflict_show(dir, state, s, resolutions);
    Ok(StreamShow {
        name: s.name.clone(),
        state: stream_word(&s.state, Some(running)).to_string(),
        reason,
        branch: layout::short_branch(&s.branch).to_string(),
        tip: tip.map(|t| t.to_string()),
        started_from: started_from.map(|o| o.to_string()),
        depends_on: s.depends_on.clone(),
        tasks,
        insertions: files.iter().filter_map(|f| f.insertions).sum(),
        deletions: files.iter().filter_map(|f| f.deletions).sum(),
        commits,
        files,
        rejections,
        kept,
        checks: checks(state, s),
        conflict,
        notes: s.notes.clone(),
        cost: {
            let mut tally = crate::ledger::Tally::default();
            for t in &s.tasks {
                tally.add(&crate::ledger::task_tally(t));
            }
            (!tally.is_empty()).then_some(tally)
        },
    })
}

/// The setup, check and gate runs of a stream, from the run's timeline, in the order they ended.
fn checks(state: &RunState, s: &StreamRecord) -> Vec<CheckRun> {
    timeline::named_steps(state, &s.name)
        .into_iter()
        .filter(|(_, span)| span.step != Step::Integration)
        .map(|(name, span)| CheckRun {
            kind: name,
            outcome: timeline::outcome_word(&span.outcome).to_string(),
            reason: match &span.outcome {
                SpanOutcome::Failed { reason } => Some(reason.clone()),
                _ => None,
            },
            time_ms: timeline::duration_ms(span),
            log: span.log.as_ref().map(|l| l.display().to_string()),
        })
        .collect()
}

/// The conflict a stream parked on: the park itself while it waits, else a conflict bundle left
/// from one, with the resolution `continue` recorded.
fn conflict_show(
    dir: &RunDir,
    state: &RunState,
    s: &StreamRecord,
    resolutions: &[(String, String)],
) -> Option<ConflictShow> {
    let bundle = dir.conflicts_dir(&s.name);
    if let StreamState::Parked(h) = &s.state {
        return Some(ConflictShow {
            files: h.files.clone(),
            bundle: h.bundle.display().to_string(),
            resolution: None,
            resolve_in: Some(h.resolution_worktree.display().to_string()),
        });
    }
    let resolution = resolutions
        .iter()
        .rev()
        .find(|(stream, _)| *stream == s.name)
        .map(|(_, commit)| commit.clone());
    // The timeline records the conflicted files; older runs have only the bundle.
    let recorded = timeline::spans_of(state, &s.name)
        .filter(|span| span.step == Step::Integration)
        .filter_map(|span| match &span.outcome {
            SpanOutcome::Conflict { files } => Some(files.clone()),
            _ => None,
        })
        .last();
    if recorded.is_none() && !bundle.exists() && resolution.is_none() {
        return None;
    }
    Some(ConflictShow {
        files: recorded.unwrap_or_else(|| bundle_files(&bundle)),
        bundle: bundle.display().to_string(),
        resolution,
        resolve_in: None,
    })
}

/// The conflicted files a bundle holds: each has `files/<path>.conflicted` (see
/// `coordinator::halt`).
fn bundle_files(bundle: &std::path::Path) -> Vec<String> {
    let root = bundle.join("files");
    let mut files = Vec::new();
    for entry in walkdir_files(&root) {
        if let Some(rel) = entry
            .strip_prefix(&root)
            .ok()
            .and_then(|p| p.to_str())
            .and_then(|p| p.strip_suffix(".conflicted"))
        {
            files.push(rel.to_string());
        }
    }
    files.sort();
    files
}

fn walkdir_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
