//! Step 4: what the agent left uncommitted, committed in its workspace on top of where it left
//! HEAD, with the task's message; work it committed itself stands as it is.

use super::attempt::Ran;
use super::verify::Leftover;
use super::{Steps, TaskOutcome, blocking, keep};
use crate::failpoint;
use crate::git::{self, commit};
use crate::ids::Oid;

/// Commits the leftover; returns the task's end. `Err`: the commit failed (its work kept).
pub(super) async fn leftover(
    task: &Steps<'_>,
    ran: &Ran,
    leftover: Leftover,
) -> Result<Oid, TaskOutcome> {
    failpoint::hit("before-commit");
    let job = task.job;
    let (worktree, message, identity) = (
        job.worktree.clone(),
        job.commit_message.clone(),
        job.identity_env.clone(),
    );
    let committed = blocking(move || -> git::GitResult<Oid> {
        match leftover {
            Leftover::Clean(head) => Ok(head),
            Leftover::Uncommitted { head, paths } => {
                commit::commit_paths(&worktree, &head, &paths, &message, &identity)
            }
        }
    })
    .await;
    task.lap("commit");
    match committed {
        Ok(end) => Ok(end),
        Err(e) => Err(failed(task, ran, e).await),
    }
}

/// The commit (or bringing it over) failed: the work is kept, and the task fails on streams'
/// side, not the agent's.
pub(super) async fn failed(task: &Steps<'_>, ran: &Ran, error: git::GitError) -> TaskOutcome {
    let kept = keep::after_failure(task).await;
    TaskOutcome::internal(
        format!("could not commit the agent's work: {error}; {kept}"),
        ran.attempts,
    )
}
