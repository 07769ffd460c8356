//! Keeping a task's work on a ref before anything could lose it: before a retry resets its
//! workspace, when it is rejected, when it fails for good, when streams' own steps fail.

use super::{Steps, blocking};
use crate::git::{self, changes, refs, workspace};
use crate::ids::Oid;

/// What becomes of the workspace once its work is kept.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// Put back at the task's start (and its branch with it).
    Reset,
    /// Left as it is for a person to look at: it is private, and what matters is kept in the
    /// user's repository.
    Leave,
}

/// Keeps everything the task did (its commits and what it left in the workspace) on
/// `ref_name`, if it did anything; `Some`: the ref and the commit kept.
pub(super) async fn work(
    task: &Steps<'_>,
    ref_name: String,
    then: Then,
) -> git::GitResult<Option<(String, Oid)>> {
    work_and_nested(task, ref_name, then, &[]).await
}

/// [`work`], the files of these nested repositories kept as files.
pub(super) async fn work_and_nested(
    task: &Steps<'_>,
    ref_name: String,
    then: Then,
    nested: &[String],
) -> git::GitResult<Option<(String, Oid)>> {
    let job = task.job;
    let nested = nested.to_vec();
    let (repo, worktree, start, branch) = (
        task.shared.repo.clone(),
        job.worktree.clone(),
        job.start.clone(),
        job.branch.clone(),
    );
    let message = format!(
        "streams: work of {} task {} set aside",
        job.stream,
        job.task.number()
    );
    blocking(move || -> git::GitResult<Option<(String, Oid)>> {
        let mut kept =
            changes::keep_work(&repo, &worktree, &start, Some(&branch), &ref_name, &message)?;
        if let Some((name, commit)) = &kept
            && !nested.is_empty()
        {
            let with_files = workspace::inline_nested(&repo, &worktree, commit, &nested)?;
            refs::update_ref(
                &repo,
                name,
                &with_files,
                Some(commit),
                "streams: nested repositories kept as files",
            )?;
            kept = Some((name.clone(), with_files));
        }
        if then == Then::Reset {
            workspace::reset_to(&repo, &worktree, &branch, &start)?;
        }
        Ok(kept)
    })
    .await
}

/// Keeps the task's work on its `failed/` ref after streams' own steps failed, and says where
/// (or why it could not).
pub(super) async fn after_failure(task: &Steps<'_>) -> String {
    let job = task.job;
    let failed = job.refs.failed(&job.stream, job.task.index);
    match work(task, failed, Then::Leave).await {
        Ok(Some((name, _))) => format!("its work is kept on {name}"),
        Ok(None) => "it changed nothing".to_string(),
        Err(e) => format!("its work is left in its workspace (keeping it failed: {e})"),
    }
}
