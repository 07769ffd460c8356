//! The size of a stream's work and the paths it changed, read from commits in the user's
//! repository. (What an agent changed in its workspace is read by `crate::workspace`.)

use std::path::Path;

use super::commit::parse_oid;
use super::{Git, GitError, GitResult, Oid, Repo};
use crate::work::WorkStats;

/// Commits in `from..to` (count), and files / lines changed between the two trees.
pub fn work_stats(repo: &Repo, from: &str, to: &str) -> GitResult<WorkStats> {
    let r = repo.open()?;
    let (from_oid, to_oid) = (parse_oid(from)?, parse_oid(to)?);
    let mut walk = r.revwalk().map_err(|e| GitError::library("revwalk", e))?;
    walk.push(to_oid)
        .map_err(|e| GitError::library("revwalk", e))?;
    walk.hide(from_oid)
        .map_err(|e| GitError::library("revwalk", e))?;
    let commits = bounded_count(walk, from, to)?;
    // Files and lines from git's own diff, which skips the subtrees both sides share (see
    // `tree_diff`). Binary files count no lines, as before.
    let out = tree_diff(repo, &["--numstat"], from, to)?;
    let mut stats = WorkStats {
        commits,
        ..WorkStats::default()
    };
    for record in out.z_fields() {
        let mut fields = record.splitn(3, '\t');
        let (added, deleted) = (fields.next(), fields.next());
        stats.files += 1;
        stats.insertions += added
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        stats.deletions += deleted.and_then(|n| n.parse::<usize>().ok()).unwrap_or(0);
    }
    Ok(stats)
}

/// `git diff` of two commits' trees with the user's diff settings out of the way (no external
/// diff or text conversion, no renames, git's default algorithm). git's tree diff skips every
/// subtree both sides share; libgit2's tree-to-tree diff took 0.5-0.7 s per task on a
/// 100,000-file tree (benchmark 5), for a change of one file.
fn tree_diff(repo: &Repo, what: &[&str], from: &str, to: &str) -> GitResult<super::cmd::GitOutput> {
    let mut args = vec![
        "diff",
        "-z",
        "--no-renames",
        "--no-ext-diff",
        "--no-textconv",
        "--diff-algorithm=myers",
    ];
    args.extend_from_slice(what);
    args.extend([from, to, "--"]);
    repo.git().run(args)
}

/// How many distinct paths the ranges `(from, to)` change between them: a file two tasks of a
/// stream both changed counts once. The paths `git diff --no-renames --name-only` lists, found
/// in process by comparing the trees down only the subtrees that differ ([`super::tree::diff`]):
/// a run's report counts every stream's files without a git process each.
pub fn distinct_files_changed(repo: &Repo, ranges: &[(Oid, Oid)]) -> GitResult<usize> {
    if ranges.is_empty() {
        return Ok(0);
    }
    let r = repo.open()?;
    let tree_of = |commit: &str| -> GitResult<String> {
        r.find_commit(parse_oid(commit)?)
            .map(|c| c.tree_id().to_string())
            .map_err(|e| GitError::library(format!("could not read commit {commit}"), e))
    };
    let mut paths = std::collections::BTreeSet::new();
    for (from, to) in ranges {
        let (a, b) = (tree_of(from)?, tree_of(to)?);
        paths.extend(
            super::tree::diff(repo, Some(&a), Some(&b))?
                .into_iter()
                .map(|d| d.path),
        );
    }
    Ok(paths.len())
}

/// More commits than any task makes: a walk that goes past it is over a broken history.
const WALK_LIMIT: usize = 1_000_000;

/// Counts a walk, stopping at the first error (a missing object: libgit2's walk would report
/// it again and again, and counting the errors never ends) and at [`WALK_LIMIT`].
pub(super) fn bounded_count(walk: git2::Revwalk<'_>, from: &str, to: &str) -> GitResult<usize> {
    let mut count = 0;
    for step in walk {
        step.map_err(|e| GitError::library(format!("could not walk the history {from}..{to}"), e))?;
        count += 1;
        if count > WALK_LIMIT {
            return Err(GitError::Library {
                context: format!("could not walk the history {from}..{to}"),
                message: format!("more than {WALK_LIMIT} commits"),
            });
        }
    }
    Ok(count)
}

/// Paths changed between two commits: the first `limit` of them, and how many there are.
pub fn changed_files(
    repo: &Repo,
    from: &str,
    to: &str,
    limit: usize,
) -> GitResult<(Vec<String>, usize)> {
    let out = tree_diff(repo, &["--name-only"], from, to)?;
    let all: Vec<String> = out.z_fields().collect();
    let total = all.len();
    let files = all.into_iter().take(limit).collect();
    Ok((files, total))
}

/// The paths whose contents differ between two trees.
pub fn tree_diff_paths(repo: &Repo, a: &str, b: &str) -> GitResult<Vec<String>> {
    let r = repo.open()?;
    let tree = |id: &str| -> GitResult<git2::Tree<'_>> {
        r.find_tree(parse_oid(id)?)
            .map_err(|e| GitError::library(format!("could not read tree {id}"), e))
    };
    let (a, b) = (tree(a)?, tree(b)?);
    let diff = r
        .diff_tree_to_tree(Some(&a), Some(&b), None)
        .map_err(|e| GitError::library("could not diff", e))?;
    let mut paths: Vec<String> = diff
        .deltas()
        .flat_map(|d| [d.old_file().path(), d.new_file().path()])
        .flatten()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    paths.sort();
    paths.dedup();
    Ok(paths)
}

/// The tracked paths with uncommitted changes in the worktree at `path` (untracked files are
/// left out: `git merge` refuses by itself to overwrite one).
pub fn modified_tracked_paths(path: &Path) -> GitResult<Vec<String>> {
    let out = Git::new(path).run(["status", "--porcelain=v1", "-z", "--untracked-files=no"])?;
    Ok(out.porcelain_paths())
}
