//! Step 5: the task's end brought into the user's repository, on the stream's branch there; from
//! then on the work is safe whatever happens to the workspace. Journaled at once (`resume`
//! recognises a task committed before a crash by it), then measured.

use super::attempt::Ran;
use super::{Steps, TaskOutcome, blocking, commit};
use crate::failpoint;
use crate::git::{self, changes, workspace};
use crate::ids::Oid;
use crate::state::{Entry, WorkStats};

/// Brings `end` into the repository; returns what the task's work amounts to. `Err`: it could
/// not be brought (the work kept).
pub(super) async fn into_repository(
    task: &Steps<'_>,
    ran: &Ran,
    end: &Oid,
) -> Result<WorkStats, TaskOutcome> {
    let job = task.job;
    let (repo, worktree, start, end) = (
        task.shared.repo.clone(),
        job.worktree.clone(),
        job.start.clone(),
        end.clone(),
    );
    let (journal, stream, task_index, branch) = (
        task.shared.journal.clone(),
        job.stream.clone(),
        job.task.index,
        job.branch.clone(),
    );
    let who = task.who.clone();
    let brought = blocking(move || -> git::GitResult<WorkStats> {
        let clock = std::time::Instant::now();
        workspace::bring_to(&repo, &worktree, &end, Some(&branch))?;
        let clock = super::lap(&who, "bring into the repository", clock);
        failpoint::hit("after-commit");
        let _ = journal.append(Entry::TaskCommitted {
            stream,
            task: task_index,
            start: start.to_string(),
            end: end.to_string(),
        });
        let stats = changes::work_stats(&repo, &start, &end)?;
        super::lap(&who, "journal, work stats", clock);
        Ok(stats)
    })
    .await;
    match brought {
        Ok(stats) => Ok(stats),
        Err(e) => Err(commit::failed(task, ran, e).await),
    }
}
