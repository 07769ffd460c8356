//! Ref moves and reads: compare-and-swap updates, keeping a commit reachable under a free name,
//! batch transactions, listings. A ref is never moved from a state we did not see: the move
//! names the expected old value.
//!
//! The single-ref moves a run makes at every task (its stream branch at the start, the task's
//! result, the integration's compare-and-swap) are written in process as git writes a loose
//! ref (libgit2: take the ref's lock, compare under it, write, log, rename) where git would do
//! nothing more: see [`in_process`]. Anywhere else, for transactions of several refs, and when
//! another git holds the lock that moment (git waits for it), `git update-ref` runs. A git
//! process a move cost 2-3 ms, four a task. A coordinator killed while it holds a lock leaves
//! it: `resume`, `continue`, `skip` and `abort` clear this plan's (`exec::stale_locks`).

use super::commit::parse_oid;
use super::{Git, GitError, GitResult, Oid, Repo, ZERO_OID};

/// Whether ref moves in `repo` may be written in process: git would only lock, write and log
/// loose refs there. Anything else (a `reference-transaction` hook, a hooks path of the user's,
/// reftable, `core.fsync` or `core.fsyncRefFiles`, `core.sharedRepository`'s permissions, no
/// identity git would give, an unreadable config) leaves them to git. With the handle, the
/// committer and date git would log (`git var`, remembered; the date now unless
/// `GIT_COMMITTER_DATE` sets it, as git does).
fn in_process(repo: &Repo) -> Option<(git2::Repository, super::commit::Ident)> {
    let r = repo.open().ok()?;
    let config = r.config().ok()?.snapshot().ok()?;
    let set = |key: &str| config.get_entry(key).is_ok();
    if [
        "core.hooksPath",
        "core.fsync",
        "core.fsyncRefFiles",
        "core.sharedRepository",
    ]
    .iter()
    .any(|key| set(key))
    {
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
    let who = super::commit::committer_ident(repo, &[]).ok()?;
    Some((r, who))
}

fn parse_git2_oid(oid: &str) -> GitResult<git2::Oid> {
    git2::Oid::from_str(oid).map_err(|e| GitError::library("not an object id", e))
}

/// What a move expects of the ref before it.
#[derive(Clone, Copy)]
enum Expected<'a> {
    Anything,
    Absent,
    At(&'a str),
}

/// Moves `name` to `new` in process, checking under the ref's lock that it is as `expected`,
/// as `git update-ref` does (lock, read, compare, write, log, rename). `None`: git must do it
/// (see [`in_process`]), or another git holds the ref's lock this moment (git waits for it,
/// `core.filesRefLockTimeout`; libgit2 would fail at once).
fn move_in_process(
    repo: &Repo,
    name: &str,
    new: &str,
    expected: Expected,
    message: &str,
) -> Option<GitResult<()>> {
    let (r, who) = in_process(repo)?;
    let target = match parse_git2_oid(new) {
        Ok(target) => target,
        Err(e) => return Some(Err(e)),
    };
    let mut transaction = match r.transaction() {
        Ok(transaction) => transaction,
        Err(e) => return Some(Err(move_failed(repo, name, e.message()))),
    };
    match transaction.lock_ref(name) {
        Ok(()) => {}
        Err(e) if e.code() == git2::ErrorCode::Locked => return None,
        Err(e) => return Some(Err(move_failed(repo, name, e.message()))),
    }
    // Under the lock: what the ref is now.
    let now = r.refname_to_id(name).ok();
    let refused = match (expected, now) {
        (Expected::Absent, Some(now)) => Some(format!("reference already exists (at {now})")),
        (Expected::At(old), Some(now)) if now.to_string() != old => {
            Some(format!("is at {now} but expected {old}"))
        }
        (Expected::At(old), None) => Some(format!("unable to resolve reference (expected {old})")),
        _ => None,
    };
    if let Some(refused) = refused {
        return Some(Err(move_failed(
            repo,
            name,
            &format!("cannot lock ref '{name}': {refused}"),
        )));
    }
    let when = git2::Time::new(who.time, who.offset);
    let written = git2::Signature::new(&who.name, &who.email, &when)
        .and_then(|sig| transaction.set_target(name, target, Some(&sig), message))
        .and_then(|()| transaction.commit());
    Some(match written {
        Ok(()) => {
            tracing::debug!("update-ref -m {message} {name} {new}: in process");
            Ok(())
        }
        Err(e) => Err(move_failed(repo, name, e.message())),
    })
}

/// A failed move in process, worded as git words it where git would say the same thing
/// ("cannot lock ref 'NAME': is at X but expected Y"), else in libgit2's words.
fn move_failed(repo: &Repo, name: &str, stderr: &str) -> GitError {
    GitError::Command {
        args: format!("update-ref {name} (in process)"),
        dir: repo.common_dir().to_path_buf(),
        stderr: stderr.to_string(),
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
    let expected = old.map_or(Expected::Absent, Expected::At);
    if let Some(moved) = move_in_process(repo, name, new, expected, message) {
        return moved;
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
        && let Some(moved) = move_in_process(repo, name, new.as_str(), Expected::Anything, message)
    {
        return moved;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env_remove("GIT_COMMITTER_DATE")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A repository with two commits on `main`; returns it and the commits' ids.
    fn two_commits() -> (tempfile::TempDir, Repo, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q", "-b", "main"]);
        git(d, &["config", "user.name", "Ref Tester"]);
        git(d, &["config", "user.email", "ref@test"]);
        git(d, &["commit", "-q", "--allow-empty", "-m", "one"]);
        let one = git(d, &["rev-parse", "HEAD"]);
        git(d, &["commit", "-q", "--allow-empty", "-m", "two"]);
        let two = git(d, &["rev-parse", "HEAD"]);
        let repo = Repo::discover(d).unwrap();
        (dir, repo, one, two)
    }

    /// In process, a move checks the ref under its lock as `git update-ref NAME NEW OLD` does:
    /// from where it was expected to be (loose or packed), never from elsewhere, and a create
    /// only where there is nothing; the reflog names the committer git would.
    #[test]
    fn a_move_in_process_compares_under_the_lock_as_git_does() {
        let (dir, repo, one, two) = two_commits();
        let d = dir.path();
        let name = "refs/heads/streams/p/x";
        assert!(in_process(&repo).is_some());
        update_ref(&repo, name, &one, None, "create").unwrap();
        // A create where the ref exists: refused, the ref left.
        let e = update_ref(&repo, name, &two, None, "again").unwrap_err();
        assert!(e.to_string().contains("already exists"), "{e}");
        // A move from a value the ref does not have: refused in git's words.
        let e = update_ref(&repo, name, &one, Some(&two), "wrong").unwrap_err();
        assert!(
            e.to_string().contains(&format!(
                "cannot lock ref '{name}': is at {one} but expected {two}"
            )),
            "{e}"
        );
        assert_eq!(git(d, &["rev-parse", name]), one);
        // Packed only: compared with the packed value, then moved.
        git(d, &["pack-refs", "--all"]);
        assert!(!d.join(".git").join(name).exists());
        update_ref(&repo, name, &two, Some(&one), "move").unwrap();
        assert_eq!(git(d, &["rev-parse", name]), two);
        // Moved whatever it was (a stream branch at its task's start).
        set_refs(&repo, &[(name.to_string(), Oid::from(one.as_str()))], "set").unwrap();
        assert_eq!(git(d, &["rev-parse", name]), one);
        let log = git(d, &["reflog", "show", "--format=%gs|%gn <%ge>", name]);
        assert_eq!(
            log.lines().collect::<Vec<_>>(),
            [
                "set|Ref Tester <ref@test>",
                "move|Ref Tester <ref@test>",
                "create|Ref Tester <ref@test>"
            ],
            "{log}"
        );
    }

    /// A ref whose lock another git holds this moment is moved by git, which waits for the lock
    /// (`core.filesRefLockTimeout`) where libgit2 would fail at once.
    #[test]
    fn a_ref_locked_for_a_moment_is_moved_once_the_lock_is_gone() {
        let (dir, repo, one, two) = two_commits();
        let d = dir.path().to_path_buf();
        git(&d, &["config", "core.filesRefLockTimeout", "5000"]);
        let name = "refs/heads/streams/p/y";
        update_ref(&repo, name, &one, None, "create").unwrap();
        let lock = d.join(".git").join(format!("{name}.lock"));
        std::fs::write(&lock, "").unwrap();
        let release = {
            let lock = lock.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                std::fs::remove_file(lock).unwrap();
            })
        };
        update_ref(&repo, name, &two, Some(&one), "after the lock").unwrap();
        release.join().unwrap();
        assert_eq!(git(&d, &["rev-parse", name]), two);
    }

    /// Where git would do more than write a loose ref, git does it.
    #[test]
    fn moves_are_gits_where_it_would_do_more() {
        let (dir, repo, ..) = two_commits();
        let d = dir.path();
        assert!(in_process(&repo).is_some());
        for (key, value) in [
            ("core.sharedRepository", "group"),
            ("core.fsync", "reference"),
            ("core.hooksPath", "hooks"),
        ] {
            git(d, &["config", key, value]);
            assert!(in_process(&repo).is_none(), "{key}");
            git(d, &["config", "--unset", key]);
        }
        std::fs::create_dir_all(d.join(".git/hooks")).unwrap();
        std::fs::write(d.join(".git/hooks/reference-transaction"), "#!/bin/sh\n").unwrap();
        assert!(in_process(&repo).is_none());
    }
}
