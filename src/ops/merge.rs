//! `merge`: takes a finished run's result (its integration branch) into a branch of the user's:
//! a fast-forward when the branch has not moved since the run's base, else (when told) a merge
//! commit. A branch that is not checked out is moved without touching any checkout; one that is
//! checked out is updated there as `git merge` would, and only when that checkout is clean.

use crate::error::{Error, Result};
use crate::git::{self, Repo, commit, merge, refs, worktree};
use crate::layout;
use crate::state::{RunPhase, RunState};

pub use crate::report::session_view::{How, Merged};

/// Merges the result of run `state` into `into` (default: the branch checked out where the
/// command runs). `allow_moved`: make a merge commit when the branch has moved since the run's
/// base (else that is refused).
pub fn merge(
    repo: &Repo,
    state: &RunState,
    into: Option<&str>,
    allow_moved: bool,
) -> Result<Merged> {
    let from = layout::short_branch(&state.integration_ref).to_string();
    match &state.phase {
        RunPhase::Finished => {}
        RunPhase::Aborted { .. } => {
            return Err(Error::state(
                format!(
                    "run {} was aborted: there is no result to merge",
                    state.run_id
                ),
                "start a new run with `streams run`",
            ));
        }
        phase => {
            return Err(Error::state(
                format!(
                    "run {} is {}, not finished: its result is not complete",
                    state.run_id,
                    phase.name()
                ),
                "finish it first (`streams status` says how); to take it as it is, `git merge` the integration branch yourself",
            ));
        }
    }
    let Some(tip) = repo.ref_target(&state.integration_ref)? else {
        return Err(Error::state(
            format!("{from} does not exist (removed by `streams clean`?)"),
            "run the plan again with `streams run`",
        ));
    };
    let branch = match into {
        Some(b) => layout::short_branch(b).to_string(),
        None => repo.current_branch().ok_or_else(|| {
            Error::usage_with_hint(
                "no branch is checked out here (detached HEAD)",
                "name the branch to merge into: `streams merge --into BRANCH`",
            )
        })?,
    };
    let branch_ref = layout::branch_ref(&branch);
    if branch_ref.starts_with(&layout::plan_branches(&state.plan_name)) {
        return Err(Error::usage_with_hint(
            format!("{branch} is one of the plan's own branches"),
            "merge into a branch of yours: `streams merge --into BRANCH`",
        ));
    }
    let Some(was) = repo.ref_target(&branch_ref)? else {
        return Err(Error::usage_with_hint(
            format!("there is no branch `{branch}`"),
            format!(
                "create it first (`git branch {branch} {}`) or name another with --into",
                crate::text::short(&state.base)
            ),
        ));
    };
    let checkout = worktree::list(repo)?
        .into_iter()
        .find(|w| w.branch.as_deref() == Some(branch_ref.as_str()))
        .map(|w| w.path);
    let done = |how| Merged {
        branch: branch.clone(),
        from: from.clone(),
        tip: tip.clone(),
        how,
        checkout: checkout.clone(),
    };
    if refs::is_ancestor(repo, &tip, &was)? {
        return Ok(done(How::UpToDate));
    }
    let fast_forward = refs::is_ancestor(repo, &was, &tip)?;
    if !fast_forward && !allow_moved {
        return Err(Error::state(
            format!(
                "{branch} has moved since the run's base ({} is not in {from}): the result cannot simply fast-forward it",
                crate::text::short(&was)
            ),
            format!(
                "`streams merge --allow-moved{}` makes a merge commit; or review first with `git log {from}..{branch}`",
                into.map(|b| format!(" --into {b}")).unwrap_or_default()
            ),
        ));
    }
    let message = format!("Merge {from} (streams run {}) into {branch}", state.run_id);
    // The merge is worked out first, without touching anything: a conflict is reported, never
    // left half done in a checkout.
    let merged_tree = if fast_forward {
        None
    } else {
        match merge::merge_tree(repo, None, &was, &tip)? {
            merge::MergeOutcome::Clean { tree } => Some(tree),
            conflict => {
                return Err(Error::state(
                    format!(
                        "merging {from} into {branch} conflicts in {}",
                        conflict.conflicted_paths().join(", ")
                    ),
                    format!("merge it by hand: `git switch {branch} && git merge {from}`"),
                ));
            }
        }
    };
    if let Some(path) = &checkout {
        let dirty = git::changes::modified_tracked_paths(path)?;
        if !dirty.is_empty() {
            return Err(Error::state(
                format!(
                    "{branch} is checked out in {} with uncommitted changes ({})",
                    path.display(),
                    dirty.join(", ")
                ),
                "commit or stash them, then run `streams merge` again",
            ));
        }
        merge::merge_into_checkout(path, &tip, fast_forward, &message)?;
        let now = repo.ref_target(&branch_ref)?.unwrap_or_default();
        return Ok(done(if fast_forward {
            How::FastForward { was }
        } else {
            How::MergeCommit { was, commit: now }
        }));
    }
    let new = match merged_tree {
        None => tip.clone(),
        Some(tree) => {
            let me = commit::committer_ident(repo, &[])?;
            commit::write_commit(repo, &tree, &[was.clone(), tip.clone()], &message, &me, &me)?
        }
    };
    // Moved only from where it was seen: a branch that moves meanwhile is not overwritten.
    refs::update_ref(
        repo,
        &branch_ref,
        &new,
        Some(&was),
        &format!("streams merge: {message}"),
    )?;
    Ok(done(if fast_forward {
        How::FastForward { was }
    } else {
        How::MergeCommit { was, commit: new }
    }))
}
