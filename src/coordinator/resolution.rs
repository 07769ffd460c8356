//! The resolution worktree: laid out for a person when a run halts, checked and recorded by
//! `streams continue`.

use std::path::Path;

use super::halt::{HaltInput, Labels};
use super::{IntegrationMove, MergeStrategy, UnitInput, move_integration_ref, short, unit_message};
use crate::git::merge::{self, ConflictEntry, MergeOutcome};
use crate::git::{GitError, GitResult, Repo, commit, conflict, refs, worktree};
use crate::ids::Oid;
use crate::state::Journal;

pub(super) fn create_resolution_worktree(
    repo: &Repo,
    input: &HaltInput,
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
    let branch = crate::layout::short_branch(input.integration_ref);
    let reason = format!("streams run {}: conflict resolution", input.run_id);
    // When the branch is checked out elsewhere (the user is looking at it), the resolution
    // happens on a detached HEAD at the same commit; `continue` records it either way.
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

/// Lays the resolution worktree out again when a person deleted it: the merge of the halt's
/// three sides is computed again (it gives what it gave when the run halted) and the conflicted
/// files get their markers back. Whatever was resolved in the deleted one is gone with it.
pub fn recreate_resolution_worktree(
    repo: &Repo,
    halt: &crate::state::Halt,
    input: &RecreateInput,
) -> GitResult<()> {
    let merge = merge::merge_tree(repo, Some(&halt.base), &halt.ours, &halt.theirs)?;
    let (tree, entries) = match &merge {
        MergeOutcome::Conflict { tree, entries, .. } => (tree.clone(), entries.clone()),
        MergeOutcome::Clean { tree } => (tree.clone(), Vec::new()),
    };
    let conflict = super::ConflictFound {
        base: halt.base.clone(),
        ours: halt.ours.clone(),
        theirs: halt.theirs.clone(),
        merge,
    };
    let halt_input = HaltInput {
        stream: input.stream,
        tasks: input.tasks,
        plan_name: input.plan_name,
        integration_ref: input.integration_ref,
        conflict: &conflict,
        bundle_dir: &halt.bundle,
        resolution_worktree: &halt.resolution_worktree,
        run_id: input.run_id,
    };
    let labels = Labels::new(&halt_input);
    create_resolution_worktree(repo, &halt_input, &tree, &entries, &halt.files, &labels)
}

/// The run's side of [`recreate_resolution_worktree`]: what the halt record does not hold.
pub struct RecreateInput<'a> {
    pub stream: &'a str,
    pub tasks: &'a [super::TaskRange],
    pub plan_name: &'a str,
    pub integration_ref: &'a str,
    pub run_id: &'a str,
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
    halt: &crate::state::Halt,
    force: bool,
) -> GitResult<Result<Oid, Unresolved>> {
    let paths = conflict::unmerged_paths(worktree_path)?;
    if !paths.is_empty() {
        return Ok(Err(Unresolved::Unmerged(paths)));
    }
    let mut markers = Vec::new();
    for file in &halt.files {
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
    if resolved == commit::tree_of(repo, &halt.ours)? {
        return Ok(Err(Unresolved::DropsStream));
    }
    let merged = match merge::merge_tree(repo, Some(&halt.base), &halt.ours, &halt.theirs)? {
        MergeOutcome::Clean { tree } | MergeOutcome::Conflict { tree, .. } => tree,
    };
    let changed: Vec<String> = crate::git::changes::tree_diff_paths(repo, &merged, &resolved)?
        .into_iter()
        .filter(|p| !halt.files.contains(p))
        .collect();
    if !changed.is_empty() {
        return Ok(Err(Unresolved::ChangesCleanFiles(changed)));
    }
    Ok(Ok(resolved))
}

/// Records a resolved tree as the unit's integration: one commit (a merge commit for the merge
/// strategy), moved onto the integration ref by compare-and-swap from the halt's tip.
pub fn record_resolution(
    repo: &Repo,
    journal: Option<&Journal>,
    input: &UnitInput,
    tree: &str,
) -> GitResult<Oid> {
    let committer = commit::committer_ident(repo, input.identity_env)?;
    let parents = match input.strategy {
        MergeStrategy::Merge => vec![input.tip.into(), input.to.into()],
        _ => vec![input.tip.into()],
    };
    let strategy = if input.strategy == MergeStrategy::Merge {
        MergeStrategy::Merge
    } else {
        MergeStrategy::Squash
    };
    let message = unit_message(input, strategy);
    let message = message.replacen('\n', " (conflict resolved)\n", 1);
    let commit = commit::write_commit(repo, tree, &parents, &message, &committer, &committer)?;
    // The person may have committed in the resolution worktree, moving the branch; the resolved
    // tree already carries their work, so the ref goes from wherever they left it.
    let current = repo.ref_target(input.integration_ref)?;
    let from = match current {
        Some(cur) if cur == input.tip || refs::is_ancestor(repo, input.tip, &cur)? => cur,
        other => {
            return Err(GitError::RefMoved {
                name: input.integration_ref.to_string(),
                dir: repo.common_dir().to_path_buf(),
                message: format!(
                    "the integration branch moved away from the conflict's tip {} (now {})",
                    short(input.tip),
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
    Ok(commit)
}
