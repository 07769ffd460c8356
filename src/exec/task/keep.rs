//! Keeping a task's work on a ref before anything could lose it: before a retry resets its
//! workspace, when it is rejected, when it fails for good, when streams' own steps fail.

use super::{Steps, blocking};
use crate::git;
use crate::ids::Oid;
use crate::workspace::Workspace;

/// What becomes of the workspace once its work is kept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// Put back at the task's start (and its branch with it).
    Reset,
    /// Left as it is for a person to look at: it is private, and what matters is kept in the
    /// user's repository.
    Leave,
}

/// Keeps everything the task did (what its files hold, nested repositories' files included,
/// and its agent's own commits) on `ref_name`, if it did anything; `Some`: the ref and the
/// commit kept.
pub(super) async fn work(
    task: &Steps<'_>,
    ws: &Workspace,
    ref_name: String,
    then: Then,
) -> git::GitResult<Option<(String, Oid)>> {
    let job = task.job;
    let (repo, ws, start, branch) = (
        task.shared.repo.clone(),
        ws.clone(),
        job.start.clone(),
        job.branch.clone(),
    );
    let message = format!(
        "streams: work of {} task {} set aside",
        job.stream,
        job.task.number()
    );
    blocking(move || match then {
        Then::Reset => ws.keep_and_reset(&repo, &start, &branch, &ref_name, &message),
        Then::Leave => ws.keep_work(&repo, &start, &branch, &ref_name, &message),
    })
    .await
}

/// Keeps the task's work on its `failed/` ref after streams' own steps failed, and says where
/// (or why it could not).
pub(super) async fn after_failure(task: &Steps<'_>, ws: &Workspace) -> String {
    let job = task.job;
    let failed = job.refs.failed(&job.stream, job.task.index);
    match work(task, ws, failed, Then::Leave).await {
        Ok(Some((name, _))) => format!("its work is kept on {name}"),
        Ok(None) => "it changed nothing".to_string(),
        Err(e) => format!("its work is left in its workspace (keeping it failed: {e})"),
    }
}
