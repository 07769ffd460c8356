//! The branch guard: branches outside the plan's own that an agent moved, created or deleted
//! while its task ran, found through the worktree's HEAD reflog and put back (or kept).

use std::path::Path;

use super::refs::{branches, keep_ref_in, update_ref};
use super::{Git, GitError, GitResult, Oid, Repo};

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
                .filter_map(|l| l.split(' ').nth(1).map(Oid::from))
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
            let short = crate::layout::short_branch(name);
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
        let short = crate::layout::short_branch(name);
        let kept = keep_ref_in(
            &git,
            &format!("{}/{short}", refs.moved),
            tip,
            "streams: an agent moved this branch",
        )?;
        match old {
            Some(old) => update_ref(repo, name, old, Some(tip), "streams: put back")?,
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
                kept.push((strip_suffix(branch).to_string(), target.into()));
                kept.push((branch.to_string(), target.into()));
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
    keep_ref_in(git, &format!("{prefix}/{branch}"), tip, &message)
        .or_else(|_| keep_ref_in(git, &format!("{prefix}/{tip}"), tip, &message))
        .map_err(|e| e.to_string())
}
