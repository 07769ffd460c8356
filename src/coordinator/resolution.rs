//! The resolution worktree: laid out for a person when a stream parks on a conflict, checked and
//! recorded by `streams continue`, carried onto the integration as it is by then.

use std::path::Path;

use super::park::{Labels, ParkInput};
use super::{IntegrationMove, MergeStrategy, UnitInput, move_integration_ref, short, unit_message};
use crate::git::merge::{self, ConflictEntry, MergeOutcome};
use crate::git::{GitError, GitResult, Repo, commit, conflict, refs, worktree};
use crate::ids::Oid;
use crate::state::Journal;

pub(super) fn create_resolution_worktree(
    repo: &Repo,
    input: &ParkInput,
    tree: &str,
    entries: &[ConflictEntry],
    files: &[String],
    labels: &Labels,
) -> GitResult<()> {
    let path = input.resolution_worktree;
    if path.exists() || worktree::list(repo)?.iter().any(|w| w.path == path) {
        worktree::remove(repo, path)?;
    }
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    // Parked while the integration goes on, the worktree is detached at the conflict's tip:
    // checked out on the integration branch, it would see the branch move under it, and a
    // commit there would drop what landed meanwhile. When the line stopped it is on the branch,
    // unless the branch is checked out elsewhere (the user is looking at it): then detached at
    // the same commit. `continue` records it either way.
    let branch = if input.detached {
        input.conflict.ours.as_str()
    } else {
        crate::layout::short_branch(input.integration_ref)
    };
    let reason = format!("streams run {}: conflict resolution", input.run_id);
    conflict::add_worktree(repo, path, branch, &input.conflict.ours, &reason)?;
    conflict::lay_out(path, tree, files, entries)?;
    for file in files {
        let target = path.join(file);
        if let Ok(bytes) = std::fs::read(&target) {
            let relabelled = labels.apply(&bytes);
            if relabelled != bytes {
                let _ = std::fs::write(&target, relabelled);
            }
        }
    }
    Ok(())
}

/// Lays the resolution worktree out again when a person deleted it: the merge of the park's
/// three sides is computed again (it gives what it gave when the stream parked) and the
/// conflicted files get their markers back. Whatever was resolved in the deleted one is gone
/// with it.
pub fn recreate_resolution_worktree(
    repo: &Repo,
    park: &crate::state::Park,
    input: &RecreateInput,
) -> GitResult<()> {
    let merge = merge::merge_tree(repo, Some(&park.base), &park.ours, &park.theirs)?;
    let (tree, entries) = match &merge {
        MergeOutcome::Conflict { tree, entries, .. } => (tree.clone(), entries.clone()),
        MergeOutcome::Clean { tree } => (tree.clone(), Vec::new()),
    };
    let conflict = super::ConflictFound {
        base: park.base.clone(),
        ours: park.ours.clone(),
        theirs: park.theirs.clone(),
        merge,
    };
    let park_input = ParkInput {
        stream: input.stream,
        tasks: input.tasks,
        plan_name: input.plan_name,
        integration_ref: input.integration_ref,
        conflict: &conflict,
        bundle_dir: &park.bundle,
        resolution_worktree: &park.resolution_worktree,
        run_id: input.run_id,
        detached: input.detached,
    };
    let labels = Labels::new(&park_input);
    create_resolution_worktree(repo, &park_input, &tree, &entries, &park.files, &labels)
}

/// The run's side of [`recreate_resolution_worktree`]: what the park record does not hold.
pub struct RecreateInput<'a> {
    pub stream: &'a str,
    pub tasks: &'a [super::TaskRange],
    pub plan_name: &'a str,
    pub integration_ref: &'a str,
    pub run_id: &'a str,
    pub detached: bool,
}

/// Why a resolution cannot be recorded yet.
#[derive(Debug)]
pub enum Unresolved {
    Unmerged(Vec<String>),
    Markers(Vec<(String, usize)>),
    /// The resolved tree is the integration tip's: every bit of the stream's work is gone.
    DropsStream,
    /// Files that merged cleanly differ from the merge: the resolution undoes (or rewrites)
    /// some of the stream's work outside the conflict.
    ChangesCleanFiles(Vec<String>),
    /// The resolution worktree was gone: it is laid out again, with the conflicts to resolve.
    Recreated,
}

/// Checks the resolution worktree: no unmerged entries, no conflict markers left in the files
/// that conflicted. Returns the resolved tree.
pub fn check_resolution(
    repo: &Repo,
    worktree_path: &Path,
    park: &crate::state::Park,
    force: bool,
) -> GitResult<Result<Oid, Unresolved>> {
    let paths = conflict::unmerged_paths(worktree_path)?;
    if !paths.is_empty() {
        return Ok(Err(Unresolved::Unmerged(paths)));
    }
    let mut markers = Vec::new();
    for file in &park.files {
        let Ok(bytes) = std::fs::read(worktree_path.join(file)) else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(&bytes) else {
            continue;
        };
        if let Some(line) = text
            .lines()
            .position(|l| l.starts_with("<<<<<<< ") || l.starts_with(">>>>>>> "))
        {
            markers.push((file.clone(), line + 1));
        }
    }
    if !markers.is_empty() {
        return Ok(Err(Unresolved::Markers(markers)));
    }
    let resolved = conflict::stage_all(worktree_path)?;
    if force {
        return Ok(Ok(resolved));
    }
    // A resolution decides the conflicted files; the rest of the merge is the stream's work,
    // and a resolution that loses it (a `git reset --hard` to start over, say) is refused.
    if resolved == commit::tree_of(repo, &park.ours)? {
        return Ok(Err(Unresolved::DropsStream));
    }
    let merged = match merge::merge_tree(repo, Some(&park.base), &park.ours, &park.theirs)? {
        MergeOutcome::Clean { tree } | MergeOutcome::Conflict { tree, .. } => tree,
    };
    let changed: Vec<String> = crate::git::changes::tree_diff_paths(repo, &merged, &resolved)?
        .into_iter()
        .filter(|p| !park.files.contains(p))
        .collect();
    if !changed.is_empty() {
        return Ok(Err(Unresolved::ChangesCleanFiles(changed)));
    }
    Ok(Ok(resolved))
}

/// What recording a resolution came to.
#[derive(Debug)]
pub enum Recorded {
    /// The integration ref moved to this commit.
    Landed(Oid),
    /// The integration moved on since the stream parked, and the resolution conflicts with
    /// what landed meanwhile: its base is the tip the resolution was made on, ours the tip now,
    /// theirs the resolution (a commit on the old tip). Nothing moved.
    Conflict(super::ConflictFound),
}

/// Records a resolved tree as the unit's integration: one commit (a merge commit for the merge
/// strategy) on the tip the conflict was found on (`input.tip`), carried onto the integration as
/// it is now (`onto`) when other streams landed since, then moved onto the integration ref by
/// compare-and-swap.
pub fn record_resolution(
    repo: &Repo,
    journal: Option<&Journal>,
    input: &UnitInput,
    tree: &str,
    onto: &str,
) -> GitResult<Recorded> {
    let committer = commit::committer_ident(repo, input.identity_env)?;
    let parents = |tip: &str| match input.strategy {
        MergeStrategy::Merge => vec![tip.into(), input.to.into()],
        _ => vec![tip.into()],
    };
    let strategy = if input.strategy == MergeStrategy::Merge {
        MergeStrategy::Merge
    } else {
        MergeStrategy::Squash
    };
    let message = unit_message(input, strategy);
    let message = message.replacen('\n', " (conflict resolved)\n", 1);
    let resolved = commit::write_commit(
        repo,
        tree,
        &parents(input.tip),
        &message,
        &committer,
        &committer,
    )?;
    let commit = if onto == input.tip {
        resolved
    } else {
        // Streams landed while this one was parked: the resolution goes on top of them as a
        // three-way merge from the tip it was made on.
        match merge::merge_tree(repo, Some(input.tip), onto, &resolved)? {
            MergeOutcome::Clean { tree } => commit::write_commit(
                repo,
                &tree,
                &parents(onto),
                &message,
                &committer,
                &committer,
            )?,
            merge @ MergeOutcome::Conflict { .. } => {
                return Ok(Recorded::Conflict(super::ConflictFound {
                    base: input.tip.into(),
                    ours: onto.into(),
                    theirs: resolved,
                    merge,
                }));
            }
        }
    };
    // When the line stopped, the resolution worktree is on the integration branch and the
    // person may have committed there, moving the branch on from `onto`; the resolved tree
    // already carries their work, so the ref goes from wherever they left it.
    let current = repo.ref_target(input.integration_ref)?;
    let from = match current {
        Some(cur) if cur == onto || refs::is_ancestor(repo, onto, &cur)? => cur,
        other => {
            return Err(GitError::RefMoved {
                name: input.integration_ref.to_string(),
                dir: repo.common_dir().to_path_buf(),
                message: format!(
                    "the integration branch moved away from the run's tip {} (now {})",
                    short(onto),
                    other.as_deref().map(short).unwrap_or("deleted")
                ),
            });
        }
    };
    let moved = UnitInput {
        tip: &from,
        ..*input
    };
    move_integration_ref(
        repo,
        journal,
        input.integration_ref,
        Some(&from),
        Some(&commit),
        IntegrationMove::Unit(&moved),
    )?;
    Ok(Recorded::Landed(commit))
}
