//! Housekeeping after a crash: clearing the git lock files a killed git left behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::git::Repo;
use crate::state::RunState;

/// Removes git lock files that a killed git left in this run's worktrees and on this plan's
/// refs (streams holds the repository lock, so no other streams process is using them). Lock
/// files anywhere else belong to someone else's git: they are reported, never deleted.
pub fn clear_stale_locks(repo: &Repo, state: &RunState) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let common = repo.common_dir();
    let ours_wt: BTreeSet<PathBuf> = state.streams.iter().map(|s| s.worktree.clone()).collect();
    // Each worktree's private git dir: <common>/worktrees/<id>, whose `gitdir` file names it.
    if let Ok(entries) = std::fs::read_dir(common.join("worktrees")) {
        for entry in entries.filter_map(|e| e.ok()) {
            let admin = entry.path();
            let target = std::fs::read_to_string(admin.join("gitdir")).unwrap_or_default();
            let wt = Path::new(target.trim())
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let ours = ours_wt.contains(&wt) || wt.file_name().is_some_and(|n| n == ".integration");
            for lock in ["index.lock", "HEAD.lock", "ORIG_HEAD.lock"] {
                let path = admin.join(lock);
                if path.exists() {
                    if ours {
                        std::fs::remove_file(&path)
                            .context(|| format!("could not remove {}", path.display()))?;
                        notes.push(format!(
                            "removed a stale git lock file left by the crash: {}",
                            path.display()
                        ));
                    } else {
                        notes.push(format!(
                            "warning: {} exists; if no git command is running there, remove it",
                            path.display()
                        ));
                    }
                }
            }
        }
    }
    let our_refs = [
        common.join("refs/heads/streams").join(&state.plan_name),
        common.join("refs/streams").join(&state.plan_name),
    ];
    for dir in &our_refs {
        for path in find_locks(dir) {
            std::fs::remove_file(&path)
                .context(|| format!("could not remove {}", path.display()))?;
            notes.push(format!(
                "removed a stale git lock file left by the crash: {}",
                path.display()
            ));
        }
    }
    for name in ["index.lock", "HEAD.lock", "packed-refs.lock", "config.lock"] {
        let path = common.join(name);
        if path.exists() {
            notes.push(format!(
                "warning: {} exists (not streams'); if no git command is running, remove it",
                path.display()
            ));
        }
    }
    Ok(notes)
}

fn find_locks(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "lock") {
                found.push(path);
            }
        }
    }
    found
}
