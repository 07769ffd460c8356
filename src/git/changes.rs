//! What an agent did in its worktree: the paths it changed, keeping what it left, and the size
//! of its work.

use std::collections::BTreeSet;
use std::path::Path;

use super::commit::parse_oid;
use super::refs::{is_ancestor, keep_ref_in};
use super::{Git, GitError, GitResult, Oid, Repo, worktree};
use crate::work::WorkStats;

/// A `git` for streams' commands in `path`: a stream's private workspace through its own git
/// directory with streams' settings (see `workspace::git`), a linked worktree as it is.
pub(super) fn git_for(path: &Path) -> Git {
    if super::workspace::is_workspace(path) {
        super::workspace::git(path)
    } else {
        Git::new(path)
    }
}

/// Everything an agent changed since its task began.
#[derive(Debug)]
pub struct TaskChanges {
    /// The worktree's HEAD now.
    pub head: Oid,
    /// The branch HEAD is on (`None` when detached).
    pub branch: Option<String>,
    /// HEAD no longer descends from the task's start: history below it was rewritten.
    pub rewritten: bool,
    /// Every path changed by its commits or left changed in the worktree (untracked files
    /// included, ignored files excluded; a rename counts as both its old and new path).
    pub paths: BTreeSet<String>,
    /// Whether anything is left uncommitted.
    pub dirty: bool,
    /// What is left to stage before committing: changed, deleted, untracked (not ignored)
    /// files that differ from the index (changes the agent staged itself are in the index).
    pub unstaged: Vec<String>,
    /// Every path left uncommitted (staged or not): what streams takes from the files when it
    /// builds the task's commit.
    pub uncommitted: Vec<String>,
    /// Paths an ignore rule matches (see `ignored`): never part of the work.
    pub ignored: Vec<String>,
    /// Nested repositories the agent made (an untracked directory with a `.git`, or a gitlink
    /// it committed to a commit this repository lacks): committing one would record only a
    /// gitlink to commits nobody else has.
    pub nested: Vec<String>,
    /// A git operation the agent started and did not finish (a merge stopped for conflicts,
    /// say), described for a person; committing over it would record half a merge.
    pub unfinished: Option<String>,
}

pub fn task_changes(repo: &Repo, worktree: &Path, start: &str) -> GitResult<TaskChanges> {
    // A private workspace is read through its own git directory (the agent's commits are
    // there until streams brings them over), with streams' settings.
    let git = git_for(worktree);
    let reader = if super::workspace::is_workspace(worktree) {
        Repo::at_common_dir(&super::workspace::git_dir(worktree), Some(worktree.into()))
    } else {
        repo.clone()
    };
    let repo = &reader;
    // HEAD, its branch, what is uncommitted and what git ignores, from one git process.
    let now = worktree::status_with_ignored(&git)?;
    let head = match now.head {
        Some(head) => head,
        // No commit at all: the same error `rev-parse` gives.
        None => git.read_oid(["rev-parse", "--verify", "HEAD^{commit}"])?,
    };
    let branch = now.branch;
    let rewritten = head != start && !is_ancestor(repo, start, &head)?;
    let mut paths = BTreeSet::new();
    if head != start {
        let out = git.run(["diff", "--name-only", "-z", "--no-renames", start, &head])?;
        paths.extend(out.z_fields());
    }
    let dirty = !now.paths.is_empty();
    let unfinished = match (
        worktree::operation_in_progress(worktree),
        now.unmerged.first(),
    ) {
        (Some(what), _) => Some(what.to_string()),
        (None, Some(path)) => Some(format!(
            "unresolved conflicts ({path}{})",
            if now.unmerged.len() > 1 {
                format!(" and {} more", now.unmerged.len() - 1)
            } else {
                String::new()
            }
        )),
        (None, None) => None,
    };
    paths.extend(now.paths.iter().cloned());
    let nested = nested_repositories(&git, worktree, start, &head, &now.paths)?;
    Ok(TaskChanges {
        head,
        branch,
        rewritten,
        paths,
        dirty,
        unstaged: now.unstaged,
        uncommitted: now.paths,
        ignored: now.ignored,
        nested,
        unfinished,
    })
}

/// See [`TaskChanges::nested`]: untracked directories holding a `.git` (status lists a nested
/// repository as one directory entry), and gitlinks the agent's commits added or changed to a
/// commit this repository cannot read.
fn nested_repositories(
    git: &Git,
    worktree: &Path,
    start: &str,
    head: &str,
    uncommitted: &[String],
) -> GitResult<Vec<String>> {
    let mut nested: Vec<String> = uncommitted
        .iter()
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| worktree.join(p).join(".git").exists())
        .map(str::to_string)
        .collect();
    if head != start {
        // `:old-mode new-mode old-oid new-oid status` NUL `path` NUL ...
        let out = git.run([
            "diff",
            "--raw",
            "-z",
            "--no-renames",
            "--no-abbrev",
            start,
            head,
        ])?;
        let mut fields = out.stdout.split(|b| *b == 0);
        while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
            let meta = String::from_utf8_lossy(meta);
            let parts: Vec<&str> = meta.split(' ').collect();
            if parts.get(1) == Some(&"160000")
                && let Some(oid) = parts.get(3)
                && !git
                    .output(["cat-file", "-e", &format!("{oid}^{{commit}}")], None)?
                    .status
                    .success()
            {
                nested.push(String::from_utf8_lossy(path).into_owned());
            }
        }
    }
    nested.sort();
    nested.dedup();
    Ok(nested)
}

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
/// stream both changed counts once.
pub fn distinct_files_changed(repo: &Repo, ranges: &[(Oid, Oid)]) -> GitResult<usize> {
    let mut paths = std::collections::BTreeSet::new();
    for (from, to) in ranges {
        paths.extend(changed_files(repo, from, to, usize::MAX)?.0);
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

/// Keeps everything in the worktree beyond `start` (its commits plus anything uncommitted)
/// reachable from a ref named after `ref_name` (a free variant of it: nothing kept earlier is
/// overwritten). Returns the ref and commit, or `None` when there is nothing beyond `start`.
///
/// `branch` is the stream's branch: when HEAD has left it (a rebase stopped half way detaches
/// HEAD; an agent checked out something else), the commits the agent made on it are kept too,
/// as a second parent of the kept commit, since the caller is about to move that branch back.
pub fn keep_work(
    repo: &Repo,
    worktree_path: &Path,
    start: &str,
    branch: Option<&str>,
    ref_name: &str,
    message: &str,
) -> GitResult<Option<(String, Oid)>> {
    let private = super::workspace::is_workspace(worktree_path);
    if private && super::workspace::sanitize(repo, worktree_path).is_err() {
        // Its git directory is beyond use: keep its files, read through the user's repository.
        return super::workspace::keep_files(repo, worktree_path, start, ref_name);
    }
    let git = git_for(worktree_path);
    let head = git.read_oid(["rev-parse", "--verify", "HEAD"])?;
    let dirty = !worktree::status_porcelain(&git)?.is_empty();
    let branch_tip = match branch {
        Some(branch) => git
            .output(["rev-parse", "-q", "--verify", branch], None)?
            .status
            .success()
            .then(|| git.read_oid(["rev-parse", "--verify", branch]))
            .transpose()?,
        None => None,
    };
    // The branch holds work of its own when it moved past the start and HEAD does not contain it.
    let branch_work = match &branch_tip {
        Some(tip) if tip != start && tip != &head => {
            let covered = git
                .output(["merge-base", "--is-ancestor", tip, &head], None)?
                .status
                .success();
            let at_or_below_start = git
                .output(["merge-base", "--is-ancestor", tip, start], None)?
                .status
                .success();
            (!covered && !at_or_below_start).then(|| tip.clone())
        }
        _ => None,
    };
    let kept = if dirty || branch_work.is_some() {
        worktree::snapshot(&git, Some(&head), branch_work.as_deref(), message)?
    } else if head != start {
        head
    } else {
        return Ok(None);
    };
    // Kept in the user's repository: removing the workspace never removes the only copy.
    if private {
        super::workspace::bring(repo, worktree_path, &kept)?;
    }
    let name = keep_ref_in(&repo.git(), ref_name, &kept, message)?;
    Ok(Some((name, kept)))
}

/// The commit checked out in the worktree at `path`.
pub fn head_of(path: &Path) -> GitResult<Oid> {
    git_for(path).read_oid(["rev-parse", "HEAD"])
}

/// The paths with uncommitted changes in the worktree at `path` (`git status --porcelain`).
pub fn dirty_paths(path: &Path) -> GitResult<Vec<String>> {
    worktree::status_porcelain(&git_for(path))
}

/// The tracked paths with uncommitted changes in the worktree at `path` (untracked files are
/// left out: `git merge` refuses by itself to overwrite one).
pub fn modified_tracked_paths(path: &Path) -> GitResult<Vec<String>> {
    let out = Git::new(path).run(["status", "--porcelain=v1", "-z", "--untracked-files=no"])?;
    Ok(out.porcelain_paths())
}
