//! Step 3: what the agent changed, and whether it was allowed to: read once from its workspace
//! against the task's start, then judged ([`judge`]): no rebase left half way, still on its
//! branch, its history not rewritten, no nested repository, nothing outside the stream's
//! ownership. Rejected work is set aside on a ref and the workspace put back at the task's start.

use std::time::Duration;

use super::attempt::Ran;
use super::{Shared, Steps, TaskOutcome, blocking, keep};
use crate::git::{self, changes};
use crate::ids::{Oid, StreamId};
use crate::ownership::Owner;
use crate::state::{FailReason, OwnershipViolation};
use crate::work::IgnoredFiles;

/// Work that passed: what is left to commit, and the ignored files it wrote (for a note).
pub(super) struct Verified {
    pub leftover: Leftover,
    pub ignored: IgnoredFiles,
}

/// What a task left in its workspace once its work passed.
pub(super) enum Leftover {
    /// Nothing: HEAD is the task's end.
    Clean(Oid),
    /// Uncommitted work on top of `head`: these paths to stage, then the index to commit.
    Uncommitted { head: Oid, paths: Vec<String> },
}

/// Why the work was rejected.
enum Rejection {
    History,
    Nested(Vec<String>),
    LeftBranch(String),
    Unfinished(String),
    Ownership(Vec<OwnershipViolation>),
}

/// Reads and judges the agent's work. `Err`: rejected (set aside), or it could not be read.
pub(super) async fn work(task: &Steps<'_>, ran: &Ran) -> Result<Verified, TaskOutcome> {
    let read = read(task, ran).await;
    task.lap("status and ownership check");
    let verified = match read {
        Err(e) => {
            let kept = keep::after_failure(task).await;
            return Err(TaskOutcome::internal(
                format!("could not inspect the agent's changes: {e}; {kept}"),
                ran.attempts,
            ));
        }
        Ok(Err(rejection)) => return Err(reject(task, ran, rejection).await),
        Ok(Ok(verified)) => verified,
    };
    if verified.ignored.count > 0 {
        let message = crate::report::ignored_note(task.job.task.number(), &verified.ignored);
        task.note(message);
    }
    Ok(verified)
}

/// Reads the work and judges it. Read-only: a git command that failed for a passing reason (a
/// lock held for a moment, a temporary file that could not be made) is tried once more.
async fn read(task: &Steps<'_>, ran: &Ran) -> git::GitResult<Result<Verified, Rejection>> {
    let job = task.job;
    let mut tries = 0;
    loop {
        tries += 1;
        let (shared, start, worktree) =
            (task.shared.clone(), job.start.clone(), job.worktree.clone());
        let (stream, branch, began) = (job.task.stream, job.branch.clone(), ran.began);
        let read = blocking(move || -> git::GitResult<Result<Verified, Rejection>> {
            let changes = changes::task_changes(&shared.repo, &worktree, &start)?;
            if let Err(rejection) = judge(&shared, stream, &branch, &changes) {
                return Ok(Err(rejection));
            }
            // Files it wrote that git ignores stay out of its work; the note names a few, so
            // that a task that finished with "no changes" is not a mystery.
            let ignored = git::ignored::written_since(&worktree, &changes.ignored, began, 3);
            // Nothing left uncommitted: HEAD is the task's end, no need to ask git again.
            let leftover = if changes.dirty {
                Leftover::Uncommitted {
                    head: changes.head,
                    paths: changes.uncommitted,
                }
            } else {
                Leftover::Clean(changes.head)
            };
            Ok(Ok(Verified { leftover, ignored }))
        })
        .await;
        match &read {
            Err(e) if tries < 2 && transient(e) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            _ => return read,
        }
    }
}

/// Whether what the agent did may be committed as stream `stream`'s work on `branch`.
fn judge(
    shared: &Shared,
    stream: StreamId,
    branch: &str,
    changes: &changes::TaskChanges,
) -> Result<(), Rejection> {
    // Before the branch check: a rebase stopped half way detaches HEAD, and "left its branch"
    // would hide what happened.
    if let Some(what) = changes.unfinished.clone() {
        return Err(Rejection::Unfinished(what));
    }
    if changes.branch.as_deref() != Some(branch) {
        let on = match &changes.branch {
            Some(other) => crate::layout::short_branch(other).to_string(),
            None => "a detached HEAD".to_string(),
        };
        return Err(Rejection::LeftBranch(on));
    }
    if changes.rewritten {
        return Err(Rejection::History);
    }
    if !changes.nested.is_empty() {
        return Err(Rejection::Nested(changes.nested.clone()));
    }
    let violations = shared
        .ownership
        .check(stream.index(), changes.paths.iter().map(String::as_str));
    if !violations.is_empty() {
        let list = violations
            .into_iter()
            .map(|v| OwnershipViolation {
                path: v.path,
                owner: match v.owner {
                    Owner::Stream(i) => Some(shared.plan.streams[i].name.clone()),
                    _ => None,
                },
            })
            .collect();
        return Err(Rejection::Ownership(list));
    }
    Ok(())
}

/// Sets rejected work aside (nested repositories as files) and puts the workspace back at the
/// task's start; the task's outcome says why and where the work is.
async fn reject(task: &Steps<'_>, ran: &Ran, rejection: Rejection) -> TaskOutcome {
    let job = task.job;
    let nested = match &rejection {
        Rejection::Nested(paths) => paths.clone(),
        _ => Vec::new(),
    };
    let rejected = job.refs.rejected(&job.stream, job.task.index);
    let kept = match keep::work_and_nested(task, rejected, keep::Then::Reset, &nested).await {
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
