//! Step 5: the task's end on the stream's branch in the user's repository; from then on the work
//! is safe whatever happens to the workspace. First streams' record of the workspace is moved to
//! the end (its files are the end's), then the branch, then the journal (`resume` recognises a
//! task committed before a crash by it), then the work is measured.

use super::attempt::Ran;
use super::verify::Verified;
use super::{Steps, TaskOutcome, blocking, commit};
use crate::failpoint;
use crate::git::{self, changes, refs};
use crate::ids::Oid;
use crate::state::{Entry, WorkStats};
use crate::workspace::Workspace;

/// Brings `end` onto the stream's branch; returns what the task's work amounts to. `Err`: it
/// could not be brought (the work kept).
pub(super) async fn into_repository(
    task: &Steps<'_>,
    ran: &Ran,
    ws: &Workspace,
    verified: Verified,
    end: &Oid,
) -> Result<WorkStats, TaskOutcome> {
    let job = task.job;
    let (repo, start, end) = (task.shared.repo.clone(), job.start.clone(), end.clone());
    let (journal, stream, task_index, branch) = (
        task.shared.journal.clone(),
        job.stream.clone(),
        job.task.index,
        job.branch.clone(),
    );
    let who = task.who.clone();
    let workspace = ws.clone();
    let brought = blocking(move || -> git::GitResult<WorkStats> {
        let clock = std::time::Instant::now();
        workspace.adopt(&repo, &verified.read, &end, &branch)?;
        if end != start {
            refs::set_refs(
                &repo,
                &[(branch.clone(), end.clone())],
                "streams: task result",
            )?;
        }
        let clock = super::lap(&who, "record, branch", clock);
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
        Err(e) => Err(commit::failed(task, ran, ws, e).await),
    }
}
