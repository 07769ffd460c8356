//! Ref moves and reads: compare-and-swap updates, keeping a commit reachable under a free name,
//! batch transactions, listings. A ref is never moved from a state we did not see: the move
//! names the expected old value.
//!
//! The single-ref moves a run makes at every task (its stream branch at the start, the task's
//! result, the integration's compare-and-swap) are written in process (libgit2: the ref's lock
//! file, compare, rename, and its reflog, as git writes a loose ref) where git would do nothing
//! more than that: the files backend, no `reference-transaction` hook, no fsync of refs asked
//! for. Anywhere else, and for transactions of several refs, `git update-ref` runs. A git
//! process a move cost 2-3 ms, four a task.

use super::commit::parse_oid;
use super::{Git, GitError, GitResult, Oid, Repo, ZERO_OID};

/// Whether ref moves in `repo` may be written in process: git would only lock, write and log
/// loose refs there. Anything else (a `reference-transaction` hook, a hooks path of the user's,
/// reftable, `core.fsync` or `core.fsyncRefFiles` set, an unreadable config) leaves them to git.
fn in_process(repo: &Repo) -> Option<git2::Repository> {
    let r = repo.open().ok()?;
    let config = r.config().ok()?.snapshot().ok()?;
    let set = |key: &str| config.get_entry(key).is_ok();
    if set("core.hooksPath") || set("core.fsync") || set("core.fsyncRefFiles") {
        return None;
    }
    if config
        .get_string("extensions.refStorage")
        .is_ok_and(|storage| storage != "files")
    {
        return None;
    }
    if repo
        .common_dir()
        .join("hooks/reference-transaction")
        .symlink_metadata()
        .is_ok()
    {
        return None;
    }
    Some(r)
}

fn parse_git2_oid(oid: &str) -> GitResult<git2::Oid> {
    git2::Oid::from_str(oid).map_err(|e| GitError::library("not an object id", e))
}

/// A failed move in process, worded as git words it ("cannot lock ref" for a lock another git
/// holds, or a ref found elsewhere than expected), so callers judge both alike.
fn move_failed(repo: &Repo, name: &str, e: &git2::Error) -> GitError {
    GitError::Command {
        args: format!("update-ref {name} (in process)"),
        dir: repo.common_dir().to_path_buf(),
        stderr: format!("cannot lock ref '{name}': {}", e.message()),
    }
}

/// Moves `name` to `new` only if it points at `old` (`None`: only if it does not exist).
pub fn update_ref(
    repo: &Repo,
    name: &str,
    new: &str,
    old: Option<&str>,
    message: &str,
) -> GitResult<()> {
    if let Some(r) = in_process(repo) {
        let target = parse_git2_oid(new)?;
        let moved = match old {
            Some(old) => r.reference_matching(name, target, true, parse_git2_oid(old)?, message),
            None => r.reference(name, target, false, message),
        };
        tracing::debug!("update-ref -m {message} {name} {new}: in process");
        return moved.map(|_| ()).map_err(|e| move_failed(repo, name, &e));
    }
    repo.git().run([
        "update-ref",
        "-m",
        message,
        name,
        new,
        old.unwrap_or(ZERO_OID),
    ])?;
    Ok(())
}

/// Keeps `oid` reachable under `name`, never overwriting what another ref keeps: when `name`
/// already holds something else, `name-2`, `name-3`, ... is used. Returns the name used.
pub fn keep_ref(repo: &Repo, name: &str, oid: &str, message: &str) -> GitResult<String> {
    keep_ref_in(&repo.git(), name, oid, message)
}

/// [`keep_ref`] through a `git` bound to any directory of the repository (a worktree's, when
/// the caller has no [`Repo`]).
pub(super) fn keep_ref_in(git: &Git, name: &str, oid: &str, message: &str) -> GitResult<String> {
    for n in 1..=1000 {
        let candidate = if n == 1 {
            name.to_string()
        } else {
            format!("{name}-{n}")
        };
        // Create-only: the all-zero old value means "must not exist yet".
        let out = git.output(
            ["update-ref", "-m", message, &candidate, oid, ZERO_OID],
            None,
        )?;
        if out.status.success() {
            return Ok(candidate);
        }
        let existing = git.output(
            [
                "rev-parse",
                "-q",
                "--verify",
                &format!("{candidate}^{{object}}"),
            ],
            None,
        )?;
        if existing.status.success() && existing.stdout_str().trim() == oid {
            return Ok(candidate);
        }
        if !existing.status.success() {
            // Not a name clash: the update itself failed.
            return Err(GitError::Command {
                args: format!("update-ref {candidate}"),
                dir: git.dir().to_path_buf(),
                stderr: out.stderr_str(),
            });
        }
    }
    Err(GitError::Command {
        args: format!("update-ref {name}"),
        dir: git.dir().to_path_buf(),
        stderr: "a thousand refs of that name exist already".into(),
    })
}

/// Points each `(name, new)` at its commit whatever it was, in one `git update-ref --stdin`
/// transaction (all or none): one git process for the batch instead of one per ref.
pub fn set_refs(repo: &Repo, refs: &[(String, Oid)], message: &str) -> GitResult<()> {
    if refs.is_empty() {
        return Ok(());
    }
    // One ref (a stream branch at its task's start or result): in process where git would do
    // no more. Transactions of several stay git's, all or none as git makes them.
    if let [(name, new)] = refs
        && let Some(r) = in_process(repo)
    {
        let moved = r.reference(name, parse_git2_oid(new.as_str())?, true, message);
        tracing::debug!("update-ref -m {message} {name} {new}: in process");
        return moved.map(|_| ()).map_err(|e| move_failed(repo, name, &e));
    }
    let input: String = refs
        .iter()
        .map(|(name, new)| format!("update {name} {new}\n"))
        .collect();
    repo.git().run_with_stdin(
        ["update-ref", "-m", message, "--stdin"],
        Some(input.as_bytes()),
    )?;
    Ok(())
}

pub fn delete_ref(repo: &Repo, name: &str) -> GitResult<()> {
    repo.git().run(["update-ref", "-d", name])?;
    Ok(())
}

/// Every ref under `prefix` and its target, sorted by name.
pub fn refs_under(repo: &Repo, prefix: &str) -> GitResult<Vec<(String, Oid)>> {
    let out = repo
        .git()
        .run(["for-each-ref", "--format=%(refname) %(objectname)", prefix])?;
    Ok(out
        .stdout_str()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(n, o)| (n.to_string(), o.into())))
        .collect())
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
            map.insert(name.to_string(), target.into());
        }
    }
    Ok(map)
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
    super::changes::bounded_count(walk, from, to)
}

/// The commits reachable from `to` but from none of `hide`, newest first.
pub fn commits_beyond(repo: &Repo, to: &str, hide: &[Oid]) -> GitResult<Vec<Oid>> {
    let r = repo.open()?;
    let mut walk = r.revwalk().map_err(|e| GitError::library("revwalk", e))?;
    walk.push(parse_oid(to)?)
        .map_err(|e| GitError::library("revwalk", e))?;
    for oid in hide {
        walk.hide(parse_oid(oid)?)
            .map_err(|e| GitError::library("revwalk", e))?;
    }
    walk.map(|id| {
        id.map(Oid::from)
            .map_err(|e| GitError::library("revwalk", e))
    })
    .collect()
}

/// Which of `candidates` the history of some local branch outside `except_prefix` holds, found
/// in process by one walk from those branches' tips. `base` and its history are left out of the
/// walk (a branch at or behind it adds nothing), so every candidate must be a commit `base`'s
/// history does not hold; the walk stops once every candidate is found.
pub fn on_branches(
    repo: &Repo,
    except_prefix: &str,
    base: &str,
    candidates: &std::collections::BTreeSet<Oid>,
) -> GitResult<std::collections::BTreeSet<Oid>> {
    let mut found = std::collections::BTreeSet::new();
    if candidates.is_empty() {
        return Ok(found);
    }
    let tips: Vec<Oid> = branches(repo, except_prefix)?
        .into_values()
        .filter(|tip| tip != base)
        .collect();
    if tips.is_empty() {
        return Ok(found);
    }
    let r = repo.open()?;
    let mut walk = r.revwalk().map_err(|e| GitError::library("revwalk", e))?;
    for tip in &tips {
        // A branch that is not a commit holds no history (`--contains` skips it too).
        let _ = walk.push(parse_oid(tip)?);
    }
    walk.hide(parse_oid(base)?)
        .map_err(|e| GitError::library(format!("could not walk from {base}"), e))?;
    for step in walk {
        let id = Oid::from(step.map_err(|e| GitError::library("could not walk the branches", e))?);
        if candidates.contains(&id) {
            found.insert(id);
            if found.len() == candidates.len() {
                break;
            }
        }
    }
    Ok(found)
}

/// The local branches (full names) whose history contains `oid`.
pub fn branches_containing(repo: &Repo, oid: &str) -> GitResult<Vec<String>> {
    let out = repo.git().run([
        "for-each-ref",
        "--format=%(refname)",
        "--contains",
        oid,
        crate::layout::branches_prefix(),
    ])?;
    Ok(out.stdout_str().lines().map(str::to_string).collect())
}
