//! Step 3: what the agent changed, and whether it was allowed to: its workspace's files read once
//! against streams' record (see `crate::workspace`), its own commits checked object by object,
//! then judged ([`judge`]): no merge or rebase left half way, still on its branch, its history
//! not rewritten, no nested repository, nothing outside the stream's ownership. Rejected work is
//! set aside on a ref and the workspace put back at the task's start.
//!
//! The agent's commits are the task's history only when each of them also stays in the lane;
//! otherwise the files are committed as one commit of streams' own (step 4) and the commits
//! kept on a ref.

use std::time::Duration;

use super::attempt::Ran;
use super::{Shared, Steps, TaskOutcome, blocking, keep};
use crate::git;
use crate::git::foreign::{self, Head};
use crate::ids::StreamId;
use crate::ownership::Owner;
use crate::state::{FailReason, OwnershipViolation};
use crate::work::IgnoredFiles;
use crate::workspace::{AgentHistory, Read, Workspace};

/// Work that passed: what the files hold, the agent's commits, and whether they are the task's
/// history.
pub(super) struct Verified {
    pub read: Read,
    pub history: AgentHistory,
    /// The agent's commits stay in the lane: they may be the task's history.
    pub take_history: bool,
}

/// Why the work was rejected.
enum Rejection {
    History,
    Nested(Vec<String>),
    LeftBranch(String),
    Unfinished(String),
    Ownership(Vec<OwnershipViolation>),
}

/// What one read found, before it is judged.
struct Found {
    read: Read,
    history: AgentHistory,
    /// A git operation the agent left half done, described for a person.
    unfinished: Option<String>,
}

/// Reads and judges the agent's work. `Err`: rejected (set aside), or it could not be read.
pub(super) async fn work(
    task: &Steps<'_>,
    ran: &Ran,
    ws: &Workspace,
) -> Result<Verified, TaskOutcome> {
    let found = read(task, ran, ws).await;
    task.lap("read and ownership check");
    let found = match found {
        Err(e) => {
            let kept = keep::after_failure(task, ws).await;
            return Err(TaskOutcome::internal(
                format!("could not inspect the agent's changes: {e}; {kept}"),
                ran.attempts,
            ));
        }
        Ok(found) => found,
    };
    if let Err(rejection) = judge(task.shared, task.job.task.stream, &task.job.branch, &found) {
        return Err(reject(task, ran, ws, rejection).await);
    }
    let ignored = agents_ignored(task, &found.read);
    if ignored.count > 0 {
        task.note(crate::report::ignored_note(
            task.job.task.number(),
            &ignored,
        ));
    }
    if let Some(why) = &found.history.refused {
        task.note(format!(
            "task {}: its agent's own commits could not be taken ({why}); its files are committed as one commit",
            task.job.task.number()
        ));
    }
    let take_history = found.history.commits.is_empty()
        || violations(task.shared, task.job.task.stream, &found.history.paths()).is_empty();
    Ok(Verified {
        read: found.read,
        history: found.history,
        take_history,
    })
}

/// Reads the work: the agent's commits first (a file they track is not ignored), then the
/// files. A failure that may pass on its own (a temporary file that could not be made) is
/// tried once more.
async fn read(task: &Steps<'_>, ran: &Ran, ws: &Workspace) -> git::GitResult<Found> {
    let job = task.job;
    let mut tries = 0;
    loop {
        tries += 1;
        let (repo, start, ws) = (task.shared.repo.clone(), job.start.clone(), ws.clone());
        let since = ran.began;
        let found = blocking(move || -> git::GitResult<Found> {
            let history = AgentHistory::read(&repo, &ws, &start)?;
            let tracked = history.tracked_beyond(&repo, &start)?;
            let read = ws.read(&repo, Some(since), &tracked)?;
            let git_dir = ws.git_dir();
            let unfinished = match foreign::operation_in_progress(&git_dir) {
                Some(what) => Some(what.to_string()),
                None => {
                    let conflicted = foreign::conflicted(&git_dir);
                    conflicted.first().map(|path| {
                        format!(
                            "unresolved conflicts ({path}{})",
                            if conflicted.len() > 1 {
                                format!(" and {} more", conflicted.len() - 1)
                            } else {
                                String::new()
                            }
                        )
                    })
                }
            };
            Ok(Found {
                read,
                history,
                unfinished,
            })
        })
        .await;
        match &found {
            Err(e) if tries < 2 && transient(e) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            _ => return found,
        }
    }
}

/// Whether what the agent did may be committed as stream `stream`'s work on `branch`.
fn judge(shared: &Shared, stream: StreamId, branch: &str, found: &Found) -> Result<(), Rejection> {
    // Before the branch check: a rebase stopped half way detaches HEAD, and "left its branch"
    // would hide what happened.
    if let Some(what) = found.unfinished.clone() {
        return Err(Rejection::Unfinished(what));
    }
    match &found.history.head {
        Head::Branch { name, .. } if name != branch => {
            let on = crate::layout::short_branch(name).to_string();
            return Err(Rejection::LeftBranch(on));
        }
        Head::Detached(_) => return Err(Rejection::LeftBranch("a detached HEAD".to_string())),
        // On its branch, or no `HEAD` git could read: its files are its work.
        _ => {}
    }
    if found.history.rewritten {
        return Err(Rejection::History);
    }
    if !found.read.nested.is_empty() {
        return Err(Rejection::Nested(found.read.nested.clone()));
    }
    let violations = violations(shared, stream, &found.read.paths());
    if !violations.is_empty() {
        return Err(Rejection::Ownership(violations));
    }
    Ok(())
}

/// The paths of `paths` the stream may not change, with their owners.
fn violations(
    shared: &Shared,
    stream: StreamId,
    paths: &std::collections::BTreeSet<String>,
) -> Vec<OwnershipViolation> {
    shared
        .ownership
        .check(stream.index(), paths.iter().map(String::as_str))
        .into_iter()
        .map(|v| OwnershipViolation {
            path: v.path,
            owner: match v.owner {
                Owner::Stream(i) => Some(shared.plan.streams[i].name.clone()),
                _ => None,
            },
        })
        .collect()
}

/// The ignored paths the agent wrote (created or changed since it started), for a note: what
/// streams put there (the checkout, `include`, `setup`) is not the agent's, and a path an
/// include rule names is left out (the note would suggest committing it).
fn agents_ignored(task: &Steps<'_>, read: &Read) -> IgnoredFiles {
    let include =
        crate::exec::include::patterns(task.shared.repo.root(), &task.shared.plan.include)
            .ok()
            .flatten();
    let mut found = IgnoredFiles::default();
    for ignored in read.ignored.iter().filter(|i| i.written_since) {
        let named = include.as_ref().is_some_and(|rules| {
            rules
                .matched_path_or_any_parents(&ignored.path, ignored.dir)
                .is_ignore()
        });
        if named {
            continue;
        }
        found.count += 1;
        if found.examples.len() < 3 {
            let shown = if ignored.dir {
                format!("{}/", ignored.path)
            } else {
                ignored.path.clone()
            };
            found.examples.push(shown);
        }
    }
    found
}

/// Sets rejected work aside (nested repositories' files with it) and puts the workspace back at
/// the task's start; the task's outcome says why and where the work is.
async fn reject(task: &Steps<'_>, ran: &Ran, ws: &Workspace, rejection: Rejection) -> TaskOutcome {
    let job = task.job;
    let rejected = job.refs.rejected(&job.stream, job.task.index);
    let kept = match keep::work(task, ws, rejected, keep::Then::Reset).await {
        Ok(Some((name, _))) => name,
        Ok(None) => "nothing (it changed nothing)".to_string(),
        Err(e) => {
            return TaskOutcome::internal(
                format!("could not set the rejected work aside: {e}"),
                ran.attempts,
            );
        }
    };
    let reason = match rejection {
        Rejection::History => FailReason::HistoryRewritten { kept },
        Rejection::Nested(paths) => FailReason::NestedRepository { paths, kept },
        Rejection::LeftBranch(on) => FailReason::LeftBranch { on, kept },
        Rejection::Unfinished(what) => FailReason::Unfinished { what, kept },
        Rejection::Ownership(violations) => FailReason::Ownership { violations, kept },
    };
    TaskOutcome::failed(reason, ran.agent, ran.attempts)
}

/// Whether a git failure may pass on its own: a lock another git held for a moment, a
/// temporary file or process that could not be made.
fn transient(error: &git::GitError) -> bool {
    let text = error.to_string();
    [
        "unable to create",
        "Unable to create",
        ".lock': File exists",
        "cannot lock ref",
        "temporarily unavailable",
        "Too many open files",
        "Interrupted system call",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}
