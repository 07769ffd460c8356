//! Housekeeping after a crash: clearing the git lock files a killed git left behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::git::locks::LockPlace;
use crate::git::{self, Repo};
use crate::layout;
use crate::state::RunState;
use crate::workspace::Workspace;

/// Removes git lock files that a killed git left in this run's worktrees and on this plan's
/// refs (streams holds the repository lock, so no other streams process is using them). Lock
/// files anywhere else belong to someone else's git: they are reported, never deleted.
pub fn clear_stale_locks(repo: &Repo, state: &RunState) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let ours_wt: BTreeSet<PathBuf> = state.streams.iter().map(|s| s.worktree.clone()).collect();
    // A stream's workspace and its control directory are streams' own: every lock file in
    // them is a killed git's.
    for wt in &ours_wt {
        let ws = Workspace::find(repo, wt);
        for path in ws.stale_locks() {
            // In the workspace: beneath it, through no link its agent put there.
            let removed = if path.starts_with(wt) {
                crate::beneath::Dir::open(wt)
                    .and_then(|dir| dir.relative(&path).and_then(|rel| dir.remove(rel)))
            } else {
                std::fs::remove_file(&path)
            };
            removed.context(|| format!("could not remove {}", path.display()))?;
            notes.push(format!(
                "removed a stale git lock file left by the crash: {}",
                path.display()
            ));
        }
    }
    let is_ours = |wt: &Path| ours_wt.contains(wt) || layout::is_resolution_worktree(wt);
    let ref_dirs = layout::loose_ref_dirs(repo.common_dir(), &state.plan_name);
    for lock in git::locks::find(repo.common_dir(), is_ours, &ref_dirs) {
        let path = &lock.path;
        if lock.ours {
            std::fs::remove_file(path)
                .context(|| format!("could not remove {}", path.display()))?;
            notes.push(format!(
                "removed a stale git lock file left by the crash: {}",
                path.display()
            ));
        } else if lock.place == LockPlace::Common {
            notes.push(format!(
                "warning: {} exists (not streams'); if no git command is running, remove it",
                path.display()
            ));
        } else {
            notes.push(format!(
                "warning: {} exists; if no git command is running there, remove it",
                path.display()
            ));
        }
    }
    Ok(notes)
}

/// Removes the lock files on this plan's loose refs that a killed coordinator left: streams
/// moves its refs in process, and one killed in the moment it held a ref's lock leaves it (a
/// `git update-ref` child outlived its coordinator and removed its own). `continue` and `skip`
/// clear them before they move refs, as `resume` does with every stale lock of the run.
pub fn clear_stale_ref_locks(repo: &Repo, state: &RunState) -> Result<Vec<String>> {
    let ref_dirs = layout::loose_ref_dirs(repo.common_dir(), &state.plan_name);
    let mut notes = Vec::new();
    for lock in git::locks::find(repo.common_dir(), |_| false, &ref_dirs) {
        if lock.place == LockPlace::Ref {
            let path = &lock.path;
            std::fs::remove_file(path)
                .context(|| format!("could not remove {}", path.display()))?;
            notes.push(format!(
                "removed a stale git lock file left by the crash: {}",
                path.display()
            ));
        }
    }
    Ok(notes)
}
