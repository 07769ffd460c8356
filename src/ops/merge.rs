//! `merge`: takes a finished run's result (its integration branch) into a branch of the user's:
//! a fast-forward when the branch has not moved since the run's base. When it moved only by the
//! results of other plans (plans side by side, merged one after the other), the run's commits
//! are replayed on top of it where every one applies cleanly (a plan that integrates by
//! `rebase`), else the result is merged with a merge commit. When it moved otherwise, that is
//! refused unless told (`--allow-moved`: a merge commit). A branch that is not checked out is
//! moved without touching any checkout; one that is checked out is updated there as `git
//! merge` would, and only when that checkout is clean. The run records where it was merged.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::git::{self, Repo, commit, merge, refs, worktree};
use crate::ids::Oid;
use crate::layout;
use crate::plan::MergeStrategy;
use crate::state::{MergedInto, RunDir, RunPhase, RunState, StateDir, StateStore, now_ms};

pub use crate::report::session_view::{How, Merged};

/// Merges the result of run `state` (in `run_dir`) into `into` (default: the branch checked
/// out where the command runs). `allow_moved`: make a merge commit when the branch has moved
/// since the run's base by anything but other plans' results (else that is refused).
pub fn merge(
    repo: &Repo,
    run_dir: &RunDir,
    state: &RunState,
    into: Option<&str>,
    allow_moved: bool,
) -> Result<Merged> {
    let merged = merge_result(repo, run_dir, state, into, allow_moved)?;
    if merged.how != How::UpToDate || state.merged.is_none() {
        let mut state = state.clone();
        state.merged = Some(MergedInto {
            branch: merged.branch.clone(),
            commit: match &merged.how {
                How::MergeCommit { commit, .. } | How::Rebased { commit, .. } => commit.clone(),
                How::UpToDate | How::FastForward { .. } => merged.tip.clone(),
            },
            how: merged.how.word().to_string(),
            at: now_ms(),
        });
        StateStore::new(run_dir.clone()).save(&mut state)?;
    }
    Ok(merged)
}

fn merge_result(
    repo: &Repo,
    run_dir: &RunDir,
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
        plan: state.plan_name.clone(),
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
    let by_other_plans = !fast_forward && moved_by_other_plans(repo, state, &was)?;
    if !fast_forward && !by_other_plans && !allow_moved {
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
    let replayed = if by_other_plans && merges_linearly(run_dir, state) {
        replay(repo, state, &was, &tip)?
    } else {
        None
    };
    let merged_tree = if fast_forward || replayed.is_some() {
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
        if let Some((new, commits)) = replayed {
            merge::merge_into_checkout(path, &new, true, &message)?;
            return Ok(done(How::Rebased {
                was,
                commit: new,
                commits,
            }));
        }
        merge::merge_into_checkout(path, &tip, fast_forward, &message)?;
        let now = repo.ref_target(&branch_ref)?.unwrap_or_default();
        return Ok(done(if fast_forward {
            How::FastForward { was }
        } else {
            How::MergeCommit { was, commit: now }
        }));
    }
    let new = match (merged_tree, &replayed) {
        (_, Some((new, _))) => new.clone(),
        (None, None) => tip.clone(),
        (Some(tree), None) => {
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
    Ok(done(match replayed {
        Some((_, commits)) => How::Rebased {
            was,
            commit: new,
            commits,
        },
        None if fast_forward => How::FastForward { was },
        None => How::MergeCommit { was, commit: new },
    }))
}

/// Whether `branch_tip`, which is not an ancestor of the run's result, moved since the run's
/// base only by the results of other plans: every commit in `base..branch_tip` is one of
/// another run's (recorded in its state: its integration tip, or where it was merged), or
/// carries streams' trailers (a commit a run integrated), or is a merge commit `streams
/// merge` made.
fn moved_by_other_plans(repo: &Repo, state: &RunState, branch_tip: &Oid) -> Result<bool> {
    let (runs, _) = StateDir::new(repo.common_dir()).runs();
    let mut hide = vec![state.base.clone()];
    for (_, other) in &runs {
        if other.plan_name == state.plan_name || !matches!(other.phase, RunPhase::Finished) {
            continue;
        }
        hide.push(other.integration_tip.clone());
        if let Some(m) = &other.merged {
            hide.push(m.commit.clone());
        }
    }
    // Commits gone since (a cleaned run's result that was never merged) cannot be hidden.
    hide.retain(|oid| repo.commit_info(oid).is_ok());
    let hide: Vec<Oid> = hide
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let beyond = refs::commits_beyond(repo, branch_tip, &hide)?;
    let trailer = format!("\n{}:", crate::git::trailers::TRAILER_STREAM);
    for oid in beyond {
        let info = repo.commit_info(&oid)?;
        let ours = info.message.contains(&trailer)
            || (info.parents.len() == 2
                && info.subject().starts_with("Merge streams/")
                && info.subject().contains("(streams run "));
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether the run integrated its streams as a line of commits (`rebase` or `squash`), which
/// can be replayed one by one; a plan that merges keeps its merge commits (and gets one more).
fn merges_linearly(run_dir: &RunDir, state: &RunState) -> bool {
    crate::ops::session::plan_from_copy(run_dir, state)
        .is_ok_and(|plan| plan.merge != MergeStrategy::Merge)
}

/// The run's commits (`base..tip`, first parents) replayed on top of `onto`, each keeping its
/// author and message: the new tip and how many, or `None` when one of them does not apply
/// cleanly (then a merge commit is made instead). Writes objects only; no ref moves.
fn replay(repo: &Repo, state: &RunState, onto: &Oid, tip: &Oid) -> Result<Option<(Oid, usize)>> {
    let commits = commit::first_parent_range(repo, &state.base, tip)?;
    if commits.iter().any(|c| c.parents.len() > 1) {
        return Ok(None);
    }
    // Each replayed commit holds `onto` plus the run's work up to that commit: the merge of
    // the commit onto `onto` with the run's base as merge base.
    let merges: Vec<(Oid, Oid, Oid)> = commits
        .iter()
        .map(|c| (state.base.clone(), onto.clone(), c.id.clone()))
        .collect();
    let trees = merge::merge_trees(repo, &merges)?;
    if trees.iter().any(Option::is_none) {
        return Ok(None);
    }
    let me = commit::committer_ident(repo, &[])?;
    let mut parent = onto.clone();
    for (info, tree) in commits.iter().zip(trees.into_iter().flatten()) {
        let author = commit::Ident::of_author(info);
        parent = commit::write_commit(repo, &tree, &[parent], &info.message, &author, &me)?;
    }
    Ok(Some((parent, commits.len())))
}
