//! Step 4: the task's end, made in the user's repository from what the read found: the agent's
//! own commits when they are its history (each object checked, each commit in the lane, the
//! last one holding exactly what its files hold); else one commit of streams' own of the files
//! on top of the start (the task's message; the agent's commits then kept on a ref).

use super::attempt::Ran;
use super::verify::Verified;
use super::{Steps, TaskOutcome, blocking, keep};
use crate::failpoint;
use crate::git;
use crate::ids::Oid;
use crate::workspace::{NotHistory, Workspace};

/// Makes the task's end; returns it. `Err`: the commit failed (its work kept).
pub(super) async fn end(
    task: &Steps<'_>,
    ran: &Ran,
    ws: &Workspace,
    verified: &Verified,
) -> Result<Oid, TaskOutcome> {
    failpoint::hit("before-commit");
    let job = task.job;
    let agent_ref = job.refs.agent(&job.stream, job.task.index);
    let committed = {
        let (repo, ws, start) = (task.shared.repo.clone(), ws.clone(), job.start.clone());
        let (message, identity) = (job.commit_message.clone(), job.identity_env.clone());
        let (read, history, take) = (
            verified.read.clone(),
            verified.history.clone(),
            verified.take_history,
        );
        blocking(move || {
            ws.commit(
                &repo, &read, &history, take, &start, &message, &identity, &agent_ref,
            )
        })
        .await
    };
    task.lap("commit");
    match committed {
        Ok(end) => {
            if let Some((name, _, why)) = &end.agent_kept {
                let why = match why {
                    NotHistory::OutsideLane => {
                        "its agent's own commits change paths outside its lane"
                    }
                    NotHistory::FilesBeyond => "its agent left work beyond its last commit",
                };
                task.note(format!(
                    "task {}: {why}, so its files are committed as one commit and its commits kept on {name}",
                    job.task.number(),
                ));
            }
            Ok(end.end)
        }
        Err(e) => Err(failed(task, ran, ws, e).await),
    }
}

/// The commit (or bringing it over) failed: the work is kept, and the task fails on streams'
/// side, not the agent's.
pub(super) async fn failed(
    task: &Steps<'_>,
    ran: &Ran,
    ws: &Workspace,
    error: git::GitError,
) -> TaskOutcome {
    let kept = keep::after_failure(task, ws).await;
    TaskOutcome::internal(
        format!("could not commit the agent's work: {error}; {kept}"),
        ran.attempts,
    )
}
