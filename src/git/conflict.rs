//! A conflicted merge laid out in a worktree for a person to resolve, as `git merge` leaves one,
//! and the resolution read back.

use std::fmt::Write as _;
use std::path::Path;

use super::merge::ConflictEntry;
use super::{Git, GitResult, Oid, Repo, ZERO_OID};

/// Adds a locked worktree at `path` on `branch` (a short name); when that branch is checked out
/// elsewhere (the user is looking at it), on a detached HEAD at `fallback` instead.
pub fn add_worktree(
    repo: &Repo,
    path: &Path,
    branch: &str,
    fallback: &str,
    reason: &str,
) -> GitResult<()> {
    let path_str = path.to_string_lossy().into_owned();
    let on_branch = repo.git().output(
        [
            "worktree", "add", "--quiet", "--lock", "--reason", reason, &path_str, branch,
        ],
        None,
    )?;
    if !on_branch.status.success() {
        repo.git().run([
            "worktree", "add", "--quiet", "--lock", "--reason", reason, "--detach", &path_str,
            fallback,
        ])?;
    }
    Ok(())
}

/// Puts the whole merge result `tree` in the worktree at `path` (clean parts applied,
/// conflicted files with markers), then the conflicted paths `files` as unmerged index entries.
pub fn lay_out(
    path: &Path,
    tree: &str,
    files: &[String],
    entries: &[ConflictEntry],
) -> GitResult<()> {
    let git = Git::new(path);
    git.run(["read-tree", "--reset", "-u", tree])?;
    let mut info = String::new();
    for path in files {
        let _ = writeln!(info, "0 {ZERO_OID}\t{path}");
    }
    for e in entries {
        let _ = writeln!(info, "{} {} {}\t{}", e.mode, e.oid, e.stage, e.path);
    }
    git.run_with_stdin(["update-index", "--index-info"], Some(info.as_bytes()))?;
    Ok(())
}

/// The paths still unmerged in the index of the worktree at `path`.
pub fn unmerged_paths(path: &Path) -> GitResult<Vec<String>> {
    let unmerged = Git::new(path).run(["ls-files", "-u", "-z"])?;
    let mut paths: Vec<String> = unmerged
        .stdout
        .split(|b| *b == 0)
        .filter_map(|e| {
            let e = String::from_utf8_lossy(e);
            e.split_once('\t').map(|(_, p)| p.to_string())
        })
        .collect();
    paths.dedup();
    Ok(paths)
}

/// Stages everything in the worktree at `path` and returns the tree it makes.
pub fn stage_all(path: &Path) -> GitResult<Oid> {
    let git = Git::new(path);
    git.run(["add", "-A"])?;
    git.read_oid(["write-tree"])
}
