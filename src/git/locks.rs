//! Lock files a killed git leaves behind (`index.lock`, `HEAD.lock`, `<ref>.lock`...), found
//! where git writes them. Whether one may be removed is the caller's decision: only a lock on
//! something that is the caller's alone (its worktrees, its refs) is safely stale.

use std::path::{Path, PathBuf};

/// Where a lock file was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockPlace {
    /// In a linked worktree's private git dir.
    Worktree,
    /// Among the loose refs under one of the directories asked about.
    Ref,
    /// In the common git dir (the user's index, HEAD, packed refs, config).
    Common,
}

#[derive(Clone, Debug)]
pub struct LockFile {
    pub path: PathBuf,
    pub place: LockPlace,
    /// Whether it belongs to the caller: a worktree lock whose worktree `is_ours` accepts, or
    /// any lock under `ref_dirs`. Common-dir locks are never anyone's but the user's.
    pub ours: bool,
}

/// Every lock file git may have left in the worktrees' private git dirs, under `ref_dirs`
/// (directories of loose refs) and in the common dir `common`, in that order.
pub fn find(common: &Path, is_ours: impl Fn(&Path) -> bool, ref_dirs: &[PathBuf]) -> Vec<LockFile> {
    let mut found = Vec::new();
    // Each worktree's private git dir: <common>/worktrees/<id>, whose `gitdir` file names it.
    if let Ok(entries) = std::fs::read_dir(common.join("worktrees")) {
        for entry in entries.filter_map(|e| e.ok()) {
            let admin = entry.path();
            let target = std::fs::read_to_string(admin.join("gitdir")).unwrap_or_default();
            let wt = Path::new(target.trim())
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let ours = is_ours(&wt);
            for lock in ["index.lock", "HEAD.lock", "ORIG_HEAD.lock"] {
                let path = admin.join(lock);
                if path.exists() {
                    found.push(LockFile {
                        path,
                        place: LockPlace::Worktree,
                        ours,
                    });
                }
            }
        }
    }
    for dir in ref_dirs {
        found.extend(find_under(dir).into_iter().map(|path| LockFile {
            path,
            place: LockPlace::Ref,
            ours: true,
        }));
    }
    for name in ["index.lock", "HEAD.lock", "packed-refs.lock", "config.lock"] {
        let path = common.join(name);
        if path.exists() {
            found.push(LockFile {
                path,
                place: LockPlace::Common,
                ours: false,
            });
        }
    }
    found
}

/// Every lock file in the git directory `dir` (a workspace's, laid out for its agent: any lock
/// there is a killed git's once the agent's processes are gone).
pub fn in_git_dir(dir: &Path) -> Vec<PathBuf> {
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Vec::new();
    }
    let mut found: Vec<PathBuf> = [
        "index.lock",
        "HEAD.lock",
        "ORIG_HEAD.lock",
        "packed-refs.lock",
        "config.lock",
    ]
    .iter()
    .map(|name| dir.join(name))
    // A link is a lock too (removed, not followed).
    .filter(|p| std::fs::symlink_metadata(p).is_ok())
    .collect();
    if std::fs::symlink_metadata(dir.join("refs")).is_ok_and(|m| m.is_dir()) {
        found.extend(find_under(&dir.join("refs")));
    }
    found
}

/// Every `*.lock` file under `dir`, at any depth.
fn find_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            // A link is not followed: what it points at is not this directory's.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "lock") {
                found.push(path);
            }
        }
    }
    found
}
