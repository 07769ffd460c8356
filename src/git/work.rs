//! What an agent did in its worktree: the paths it changed, committing what it left, and the
//! size of its work.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Git, GitError, GitResult, Oid, Repo, worktree};

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
    let (git, reader) = if super::workspace::is_workspace(worktree) {
        (
            super::workspace::git(worktree),
            Repo::at_common_dir(&super::workspace::git_dir(worktree), Some(worktree.into())),
        )
    } else {
        (Git::new(worktree), repo.clone())
    };
    let repo = &reader;
    // HEAD, its branch and what is uncommitted, from one git process.
    let now = worktree::status(&git)?;
    let head = match now.head {
        Some(head) => head,
        // No commit at all: the same error `rev-parse` gives.
        None => git.read(["rev-parse", "--verify", "HEAD^{commit}"])?,
    };
    let branch = now.branch;
    let rewritten = head != start && !is_ancestor(repo, start, &head)?;
    let mut paths = BTreeSet::new();
    if head != start {
        let out = git.run(["diff", "--name-only", "-z", "--no-renames", start, &head])?;
        paths.extend(split_z(&out.stdout));
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
        let out = git.run(["diff", "--raw", "-z", "--no-renames", "--no-abbrev", start, head])?;
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

/// Commits what the task left uncommitted: `paths` (every path the check listed as
/// uncommitted) taken from the files, on top of `head` (where the check found HEAD).
///
/// The tree is built in an index of streams' own, read from `head`, never from the agent's
/// index: what was checked is exactly what is committed, whatever the agent staged, and a
/// process that survived it cannot slip anything in. Naming the paths spares `git add` a walk
/// of every file and directory of the worktree.
///
/// The commit is plumbing (`write-tree`, `commit-tree`, then HEAD moved by compare-and-swap)
/// rather than `git commit`, which would refresh the whole index once more, look for hooks and
/// start `git maintenance --auto` in the background, which packs refs while streams moves them.
/// Identity and dates come from the same environment and config as `git commit`'s; nothing is
/// signed, as before, and no hook runs at all: a commit streams makes for an agent is plumbing.
pub fn commit_paths(
    worktree: &Path,
    head: &str,
    paths: &[String],
    message: &str,
    env: &[(String, String)],
) -> GitResult<Oid> {
    let mut git = if super::workspace::is_workspace(worktree) {
        super::workspace::git(worktree)
    } else {
        Git::new(worktree)
    };
    for (k, v) in env {
        git = git.with_env(k, v);
    }
    let tmp = tempfile::Builder::new()
        .prefix("streams-index-")
        .tempfile()
        .map_err(|e| GitError::Command {
            args: "commit".into(),
            dir: worktree.to_path_buf(),
            stderr: e.to_string(),
        })?;
    let own_index = git.with_env("GIT_INDEX_FILE", tmp.path().to_string_lossy());
    own_index.run(["read-tree", head])?;
    // An empty list would mean "everything" to `git add`.
    if !paths.is_empty() {
        let list: Vec<u8> = paths
            .iter()
            .flat_map(|p| p.as_bytes().iter().copied().chain([0]))
            .collect();
        own_index.run_with_stdin(
            [
                "--literal-pathspecs",
                "add",
                "-A",
                "--pathspec-from-file=-",
                "--pathspec-file-nul",
            ],
            Some(&list),
        )?;
    }
    let tree = own_index.read(["write-tree"])?;
    let message = clean_message(message);
    let commit = git
        .run_with_stdin(
            ["commit-tree", &tree, "-p", head, "-F", "-"],
            Some(message.as_bytes()),
        )?
        .stdout_str()
        .trim()
        .to_string();
    // Through HEAD, so that the branch and HEAD reflogs both record it, as `git commit` would.
    let subject = message.lines().next().unwrap_or("");
    git.run([
        "update-ref",
        "-m",
        &format!("commit: {subject}"),
        "HEAD",
        &commit,
        head,
    ])?;
    // The worktree's own index as the commit has it (files stay; unchanged entries keep
    // their cached stat data, so the next status does not read every file again).
    git.run(["reset", "-q", "--no-refresh"])?;
    // What `git commit` clears after committing: a `merge --squash` leaves its message for the
    // next commit to pick up, which would otherwise be the next task's.
    if let Some(admin) = worktree::admin_dir(worktree) {
        let _ = std::fs::remove_file(admin.join("SQUASH_MSG"));
    }
    Ok(commit)
}

/// The message as `git commit -F` stores it (its default `whitespace` cleanup): trailing
/// whitespace cut from every line, runs of blank lines made one, blank lines at either end
/// dropped, one final newline.
pub fn clean_message(message: &str) -> String {
    let mut out = String::new();
    let mut blank_run = false;
    // Git's own idea of whitespace: not Unicode's (a title may end in an ideographic space).
    for line in message
        .lines()
        .map(|l| l.trim_end_matches([' ', '\t', '\r']))
    {
        if line.is_empty() {
            blank_run = !out.is_empty();
            continue;
        }
        if blank_run {
            out.push('\n');
            blank_run = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

pub fn is_ancestor(repo: &Repo, ancestor: &str, descendant: &str) -> GitResult<bool> {
    if ancestor == descendant {
        return Ok(true);
    }
    let r = repo.open()?;
    let (a, d) = (parse_oid(ancestor)?, parse_oid(descendant)?);
    r.graph_descendant_of(d, a)
        .map_err(|e| GitError::library(format!("could not compare {ancestor} and {descendant}"), e))
}

/// Commits in `from..to` (count), and files / lines changed between the two trees.
pub fn work_stats(repo: &Repo, from: &str, to: &str) -> GitResult<crate::state::WorkStats> {
    let r = repo.open()?;
    let (from_oid, to_oid) = (parse_oid(from)?, parse_oid(to)?);
    let mut walk = r.revwalk().map_err(|e| GitError::library("revwalk", e))?;
    walk.push(to_oid)
        .map_err(|e| GitError::library("revwalk", e))?;
    walk.hide(from_oid)
        .map_err(|e| GitError::library("revwalk", e))?;
    let commits = bounded_count(walk, from, to)?;
    let from_tree = r
        .find_commit(from_oid)
        .and_then(|c| c.tree())
        .map_err(|e| GitError::library(format!("could not read {from}"), e))?;
    let to_tree = r
        .find_commit(to_oid)
        .and_then(|c| c.tree())
        .map_err(|e| GitError::library(format!("could not read {to}"), e))?;
    let diff = r
        .diff_tree_to_tree(Some(&from_tree), Some(&to_tree), None)
        .map_err(|e| GitError::library("could not diff", e))?;
    let stats = diff
        .stats()
        .map_err(|e| GitError::library("could not diff", e))?;
    Ok(crate::state::WorkStats {
        commits,
        files: stats.files_changed(),
        insertions: stats.insertions(),
        deletions: stats.deletions(),
    })
}

/// Paths changed between two commits: the first `limit` of them, and how many there are.
pub fn changed_files(
    repo: &Repo,
    from: &str,
    to: &str,
    limit: usize,
) -> GitResult<(Vec<String>, usize)> {
    let r = repo.open()?;
    let tree = |id: &str| -> GitResult<git2::Tree<'_>> {
        r.find_commit(parse_oid(id)?)
            .and_then(|c| c.tree())
            .map_err(|e| GitError::library(format!("could not read {id}"), e))
    };
    let (a, b) = (tree(from)?, tree(to)?);
    let diff = r
        .diff_tree_to_tree(Some(&a), Some(&b), None)
        .map_err(|e| GitError::library("could not diff", e))?;
    let total = diff.deltas().len();
    let files = diff
        .deltas()
        .take(limit)
        .filter_map(|d| {
            d.new_file()
                .path()
                .or(d.old_file().path())
                .map(|p| p.to_string_lossy().into_owned())
        })
        .collect();
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

/// How many commits are in `from..to`.
pub fn count_commits(repo: &Repo, from: &str, to: &str) -> GitResult<usize> {
    if from == to {
        return Ok(0);
    }
    let r = repo.open()?;
    let mut walk = r.revwalk().map_err(|e| GitError::library("revwalk", e))?;
    walk.push(parse_oid(to)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    walk.hide(parse_oid(from)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    bounded_count(walk, from, to)
}

/// More commits than any task makes: a walk that goes past it is over a broken history.
const WALK_LIMIT: usize = 1_000_000;

/// Counts a walk, stopping at the first error (a missing object: libgit2's walk would report
/// it again and again, and counting the errors never ends) and at [`WALK_LIMIT`].
fn bounded_count(walk: git2::Revwalk<'_>, from: &str, to: &str) -> GitResult<usize> {
    let mut count = 0;
    for step in walk {
        step.map_err(|e| {
            GitError::library(format!("could not walk the history {from}..{to}"), e)
        })?;
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

pub(crate) fn parse_oid(id: &str) -> GitResult<git2::Oid> {
    git2::Oid::from_str(id).map_err(|_| GitError::BadRevision {
        rev: id.to_string(),
    })
}

pub(crate) fn split_z(bytes: &[u8]) -> impl Iterator<Item = String> + '_ {
    bytes
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

/// Identity to fall back on when the user's git has none configured, so that streams' own
/// commits (and agents' commits) do not fail with "Please tell me who you are".
pub fn identity_env(repo: &Repo) -> Vec<(String, String)> {
    let has_ident = repo
        .git()
        .output(["var", "GIT_COMMITTER_IDENT"], None)
        .map(|o| o.status.success())
        .unwrap_or(false);
    if has_ident {
        return Vec::new();
    }
    [
        ("GIT_AUTHOR_NAME", "streams"),
        ("GIT_AUTHOR_EMAIL", "streams@localhost"),
        ("GIT_COMMITTER_NAME", "streams"),
        ("GIT_COMMITTER_EMAIL", "streams@localhost"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Every local branch and its tip, except those under `except_prefix` (a ref name prefix).
pub fn branches(
    repo: &Repo,
    except_prefix: &str,
) -> GitResult<std::collections::BTreeMap<String, Oid>> {
    let r = repo.open()?;
    let refs = r
        .references_glob("refs/heads/*")
        .map_err(|e| GitError::library("could not list branches", e))?;
    let mut map = std::collections::BTreeMap::new();
    for reference in refs.flatten() {
        if let (Some(name), Some(target)) = (reference.name(), reference.target())
            && !name.starts_with(except_prefix)
        {
            map.insert(name.to_string(), target.to_string());
        }
    }
    Ok(map)
}

/// The worktree's HEAD reflog file (`<common>/worktrees/<id>/logs/HEAD`), found from its `.git`
/// file without running git.
fn head_reflog_path(worktree: &Path) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(worktree.join(".git")).ok()?;
    let gitdir = text.trim().strip_prefix("gitdir: ")?;
    let gitdir = std::path::Path::new(gitdir);
    let gitdir = if gitdir.is_absolute() {
        gitdir.to_path_buf()
    } else {
        worktree.join(gitdir)
    };
    Some(gitdir.join("logs/HEAD"))
}

/// How many entries the worktree's HEAD reflog has now (a mark to read from later).
pub fn head_reflog_len(worktree: &Path) -> usize {
    head_reflog_path(worktree)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// The commits made in this worktree since the reflog had `since` entries: what HEAD moved to
/// by committing, merging, rebasing and the like. Mere checkouts and resets are left out: they
/// visit commits that already existed, possibly someone else's.
pub fn commits_made_since(worktree: &Path, since: usize) -> std::collections::BTreeSet<Oid> {
    head_reflog_path(worktree)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| {
            t.lines()
                .skip(since)
                .filter(|l| {
                    let message = l.split_once('\t').map_or("", |(_, m)| m);
                    !message.starts_with("checkout:") && !message.starts_with("reset:")
                })
                .filter_map(|l| l.split(' ').nth(1).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A branch an agent moved (or created) outside its own, found and put back.
#[derive(Clone, Debug)]
pub struct MovedBranch {
    pub name: String,
    /// Where the agent left it, now kept on `kept`.
    pub agent_tip: Oid,
    pub kept: String,
}

/// What happened to branches outside the plan's own while a task ran.
#[derive(Clone, Debug, Default)]
pub struct BranchChanges {
    /// Moved (or created) by the agent: put back, the agent's tip kept.
    pub moved: Vec<MovedBranch>,
    /// Gone since the task started, and not set aside by streams itself.
    pub deleted: Vec<DeletedBranch>,
}

/// A branch that disappeared while a task ran.
#[derive(Clone, Debug)]
pub struct DeletedBranch {
    pub name: String,
    /// The commit it pointed at.
    pub tip: Oid,
    /// The ref now keeping that commit, or why none could be made.
    pub kept: Result<String, String>,
}

/// Where the branch guard keeps things (full ref names and prefixes).
pub struct GuardRefs<'a> {
    /// The plan's own branches, which the dispatcher guards itself.
    pub plan_branches: &'a str,
    /// Where what an agent left on a branch it moved is kept.
    pub moved: &'a str,
    /// Where the tip of a deleted branch is kept.
    pub deleted: &'a str,
    /// The prefix of every task's rejected work, under which the tips of branches an agent
    /// moved or created are kept (`<stream>/<task>-branches/<branch>`).
    pub rejected: &'a str,
}

/// Puts back every branch (outside the plan's) that changed since `before` to a commit made
/// in the agent's worktree since `reflog_mark`: those moves are the agent's own (a commit the
/// user made in their own checkout meanwhile is not in that reflog, and is left alone). What
/// the agent left there is kept under `refs.moved/<branch>`.
///
/// A branch deleted meanwhile cannot be told apart from one the user deleted (a deletion leaves
/// no reflog), so it is not recreated; its tip is kept under `refs.deleted/<branch>` so that no
/// commit becomes unreachable, and the caller says so. Keeping it is best effort: a failure is
/// reported, not a reason to fail the task.
pub fn restore_moved_branches(
    repo: &Repo,
    worktree: &Path,
    before: &std::collections::BTreeMap<String, Oid>,
    reflog_mark: usize,
    refs: &GuardRefs,
) -> GitResult<BranchChanges> {
    let made = commits_made_since(worktree, reflog_mark);
    let after = branches(repo, refs.plan_branches)?;
    let git = repo.git();
    let mut changes = BranchChanges::default();
    let gone: Vec<(&String, &Oid)> = before
        .iter()
        .filter(|(name, _)| !after.contains_key(*name))
        // libgit2 can miss a branch that `pack-refs` moves while it lists them: ask git.
        .filter(|(name, _)| {
            git.output(["rev-parse", "-q", "--verify", name.as_str()], None)
                .is_ok_and(|o| !o.status.success())
        })
        .collect();
    if !gone.is_empty() {
        let kept_by_guard = guard_kept(repo, refs)?;
        for (name, old) in gone {
            let short = name.trim_start_matches("refs/heads/");
            // Set aside by the guard already: a branch an agent created, which streams removed
            // after keeping it, or a deletion an earlier task (or attempt) reported.
            if kept_by_guard
                .iter()
                .any(|(branch, tip)| tip == old && (branch == short || branch == old))
            {
                continue;
            }
            changes.deleted.push(DeletedBranch {
                name: short.to_string(),
                tip: old.clone(),
                kept: keep_deleted(&git, refs.deleted, short, old),
            });
        }
    }
    if made.is_empty() {
        return Ok(changes);
    }
    for (name, tip) in &after {
        let old = before.get(name);
        if old == Some(tip) || !made.contains(tip) {
            continue;
        }
        let short = name.trim_start_matches("refs/heads/");
        let kept = super::integrate::keep_ref(
            &git,
            &format!("{}/{short}", refs.moved),
            tip,
            "streams: an agent moved this branch",
        )?;
        match old {
            Some(old) => {
                super::integrate::update_ref(repo, name, old, Some(tip), "streams: put back")?
            }
            None => {
                git.run(["update-ref", "-d", name, tip])?;
            }
        }
        changes.moved.push(MovedBranch {
            name: short.to_string(),
            agent_tip: tip.clone(),
            kept,
        });
    }
    Ok(changes)
}

/// The branches the guard itself has kept tips of, as (branch name or commit id, tip): under
/// `refs.deleted/` and `refs.rejected<stream>/<task>-branches/`, without `keep_ref`'s `-N`
/// suffix. Other kept refs (a task's work, an earlier run's branches) say nothing of a branch.
fn guard_kept(repo: &Repo, refs: &GuardRefs) -> GitResult<Vec<(String, Oid)>> {
    let r = repo.open()?;
    let mut kept = Vec::new();
    for (prefix, whole) in [
        (format!("{}/", refs.deleted), true),
        (refs.rejected.to_string(), false),
    ] {
        let list = r
            .references_glob(&format!("{prefix}*"))
            .map_err(|e| GitError::library("could not list refs", e))?;
        for reference in list.flatten() {
            let (Some(name), Some(target)) = (reference.name(), reference.target()) else {
                continue;
            };
            let rest = &name[prefix.len()..];
            let branch = if whole {
                Some(rest)
            } else {
                rest.split_once("-branches/").map(|(_, branch)| branch)
            };
            if let Some(branch) = branch {
                kept.push((strip_suffix(branch).to_string(), target.to_string()));
                kept.push((branch.to_string(), target.to_string()));
            }
        }
    }
    Ok(kept)
}

/// `name` without the `-2`, `-3`... `keep_ref` adds when a name is taken.
fn strip_suffix(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((base, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => base,
        _ => name,
    }
}

/// Keeps a deleted branch's tip on `prefix/<branch>`; when that name cannot be made (a ref
/// `prefix/a` blocks `prefix/a/b`; another task is writing the same ref at this instant), on
/// `prefix/<commit id>`.
fn keep_deleted(git: &Git, prefix: &str, branch: &str, tip: &str) -> Result<String, String> {
    let message = format!("streams: the tip of branch {branch}, deleted while a task ran");
    super::integrate::keep_ref(git, &format!("{prefix}/{branch}"), tip, &message)
        .or_else(|_| super::integrate::keep_ref(git, &format!("{prefix}/{tip}"), tip, &message))
        .map_err(|e| e.to_string())
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
    let git = if private {
        super::workspace::git(worktree_path)
    } else {
        Git::new(worktree_path)
    };
    let head = git.read(["rev-parse", "--verify", "HEAD"])?;
    let dirty = !worktree::status_porcelain(&git)?.is_empty();
    let branch_tip = match branch {
        Some(branch) => git
            .output(["rev-parse", "-q", "--verify", branch], None)?
            .status
            .success()
            .then(|| git.read(["rev-parse", "--verify", branch]))
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
    let name = super::integrate::keep_ref(&repo.git(), ref_name, &kept, message)?;
    Ok(Some((name, kept)))
}

#[cfg(test)]
mod tests {
    use super::clean_message;

    /// `git stripspace` is the cleanup `git commit -F` applies; ours must agree with it.
    #[test]
    fn messages_are_cleaned_as_git_commit_cleans_them() {
        for message in [
            "Add login",
            "Add login\n",
            "\n\n  Add login  \n\n\n\nBody line \t\n\n\nStreams-Stream: api\nStreams-Task: 1\n\n",
            "one\r\ntwo\r\n",
            "   \n\t\n",
            "a\n \nb",
            "\u{3000}title\u{3000}\n\u{a0}\nbody\u{b}\u{c}\n",
        ] {
            let mut git = std::process::Command::new("git")
                .arg("stripspace")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            git.stdin
                .take()
                .unwrap()
                .write_all(message.as_bytes())
                .unwrap();
            let expected = String::from_utf8(git.wait_with_output().unwrap().stdout).unwrap();
            assert_eq!(clean_message(message), expected, "for {message:?}");
        }
    }
}
