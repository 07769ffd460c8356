//! Stream worktrees: create, reuse, verify, snapshot, remove.
//!
//! Worktrees are registered with `git worktree add --no-checkout --lock`, one at a time (parallel
//! `worktree add` on one repository races on `.git/worktrees/`), and filled afterwards, which may
//! run in parallel. A worktree left by an earlier run is reused: reset to the new commit instead
//! of checked out afresh, which only rewrites the files that differ. Anything uncommitted found in
//! a worktree is saved to a ref before the worktree is reset, so nothing is ever thrown away.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Git, GitError, GitResult, Oid, Repo};

/// Serialises worktree registration across every thread of this process.
static REGISTER: Mutex<()> = Mutex::new(());

/// What `prepare` is asked for.
pub struct WorktreeSpec<'a> {
    pub path: &'a Path,
    /// Full ref name: `refs/heads/streams/<plan>/<stream>`.
    pub branch: &'a str,
    pub commit: &'a str,
    /// Shown by `git worktree list` so people know why it is locked.
    pub lock_reason: &'a str,
    /// Where to keep uncommitted work found in an existing worktree.
    pub wip_ref: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    /// Registered and checked out now.
    Created,
    /// An existing worktree, reset to the commit.
    Reused,
    /// Already on the right branch and commit, clean: nothing to do.
    Ready,
}

#[derive(Debug)]
pub struct PrepareReport {
    pub how: Prepared,
    /// Uncommitted work found there: the ref (`wip_ref` or a free variant of it) and commit.
    pub saved: Option<(String, Oid)>,
    /// A half-created worktree (killed mid-checkout) that was removed first.
    pub repaired: bool,
}

/// One entry of `git worktree list --porcelain`.
#[derive(Clone, Debug, Default)]
pub struct WorktreeInfo {
    pub path: PathBuf,
    pub head: Option<Oid>,
    pub branch: Option<String>,
    pub locked: bool,
    /// Why it is locked, when a reason was given.
    pub lock_reason: Option<String>,
    pub prunable: bool,
}

/// The lock reason every worktree streams creates starts with this.
pub const LOCK_REASON_PREFIX: &str = "streams run";

impl WorktreeInfo {
    /// A worktree streams made (for a stream or a conflict resolution), as opposed to the
    /// user's own checkouts: under `<common dir>/streams/`, or locked by a streams run.
    pub fn is_streams(&self, common_dir: &Path) -> bool {
        self.path.starts_with(common_dir.join("streams"))
            || self
                .lock_reason
                .as_deref()
                .is_some_and(|r| r.starts_with(LOCK_REASON_PREFIX))
    }
}

pub fn list(repo: &Repo) -> GitResult<Vec<WorktreeInfo>> {
    // Reading `.git/worktrees/` while another thread registers a worktree there can catch a
    // half-written entry ("failed to read .../commondir"): read under the same lock.
    let out = {
        let _guard = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
        repo.git().run(["worktree", "list", "--porcelain", "-z"])?
    };
    let mut list = Vec::new();
    let mut current: Option<WorktreeInfo> = None;
    for field in out.stdout.split(|b| *b == 0) {
        let field = String::from_utf8_lossy(field);
        if field.is_empty() {
            if let Some(info) = current.take() {
                list.push(info);
            }
            continue;
        }
        let (key, value) = field.split_once(' ').unwrap_or((&field, ""));
        match key {
            "worktree" => {
                if let Some(info) = current.take() {
                    list.push(info);
                }
                current = Some(WorktreeInfo {
                    path: PathBuf::from(value),
                    ..Default::default()
                });
            }
            "HEAD" => current
                .iter_mut()
                .for_each(|i| i.head = Some(value.to_string())),
            "branch" => current
                .iter_mut()
                .for_each(|i| i.branch = Some(value.to_string())),
            "locked" => current.iter_mut().for_each(|i| {
                i.locked = true;
                i.lock_reason = (!value.is_empty()).then(|| value.to_string());
            }),
            "prunable" => current.iter_mut().for_each(|i| i.prunable = true),
            _ => {}
        }
    }
    list.extend(current);
    Ok(list)
}

/// Makes `spec.path` a clean worktree on `spec.branch` at `spec.commit`, reusing what is there
/// when it can. The branch is created or moved to the commit; callers keep a ref to anything the
/// branch held that the move would orphan.
pub fn prepare(repo: &Repo, spec: &WorktreeSpec) -> GitResult<PrepareReport> {
    let mut repaired = false;
    let mut saved = None;
    // The branch checked out in another worktree of streams' (an earlier run's, before
    // `worktree_root` moved): keep what is there, then free the branch by removing it.
    let want = canonical(spec.path);
    let mut listed = list(repo)?;
    let mut removed_any = false;
    for other in &listed {
        if other.branch.as_deref() == Some(spec.branch) && canonical(&other.path) != want {
            if !other.is_streams(repo.common_dir()) {
                return Err(GitError::Command {
                    args: "worktree add".into(),
                    dir: other.path.clone(),
                    stderr: format!(
                        "{} is checked out in {}, which is not a streams worktree; switch it to another branch",
                        spec.branch.trim_start_matches("refs/heads/"),
                        other.path.display()
                    ),
                });
            }
            if other.path.join(".git").is_file() {
                saved = save_dirty(
                    &Git::new(&other.path),
                    spec.wip_ref,
                    &format!("uncommitted work found in {}", other.path.display()),
                )?;
            }
            remove(repo, &other.path)?;
            removed_any = true;
        }
    }
    if removed_any {
        listed = list(repo)?;
    }
    let registered = listed.into_iter().find(|w| canonical(&w.path) == want);

    if spec.path.join(".git").is_file() && registered.as_ref().is_some_and(|w| !w.prunable) {
        let git = Git::new(spec.path);
        // No index: registered but never filled (killed mid-checkout). Its "deleted" files are
        // not work; it is recreated below.
        if let Some(head) = readable_head(&git).filter(|_| has_index(&git)) {
            saved = save_dirty(
                &git,
                spec.wip_ref,
                &format!("uncommitted work found in {}", spec.path.display()),
            )?;
            let on_branch = git
                .output(["symbolic-ref", "-q", "HEAD"], None)?
                .stdout_str()
                .trim()
                == spec.branch;
            if registered.as_ref().is_some_and(|w| !w.locked) {
                // Locked again (an abort unlocks), so `git worktree prune` leaves it alone.
                let path = spec.path.to_string_lossy().into_owned();
                let _ = repo.git().output(
                    ["worktree", "lock", "--reason", spec.lock_reason, &path],
                    None,
                );
            }
            if on_branch && head == spec.commit && saved.is_none() {
                return Ok(PrepareReport {
                    how: Prepared::Ready,
                    saved,
                    repaired,
                });
            }
            if on_branch {
                git.run(["reset", "-q", "--hard", spec.commit])?;
            } else {
                let short = spec.branch.trim_start_matches("refs/heads/");
                git.run(["checkout", "-q", "-f", "-B", short, spec.commit])?;
            }
            git.run(["clean", "-q", "-f", "-d"])?;
            verify(&git, spec)?;
            return Ok(PrepareReport {
                how: Prepared::Reused,
                saved,
                repaired,
            });
        }
        // Registered but unreadable: a checkout that was killed half way.
    }

    if registered.is_some() || spec.path.exists() {
        remove_broken(repo, spec.path)?;
        repaired = true;
    }
    create(repo, spec)?;
    Ok(PrepareReport {
        how: Prepared::Created,
        saved,
        repaired,
    })
}

fn create(repo: &Repo, spec: &WorktreeSpec) -> GitResult<()> {
    if let Some(parent) = spec.path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| GitError::Command {
            args: "worktree add".into(),
            dir: parent.to_path_buf(),
            stderr: e.to_string(),
        })?;
    }
    let short = spec.branch.trim_start_matches("refs/heads/");
    let path = spec.path.to_string_lossy().into_owned();
    {
        let _guard = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
        repo.git().run([
            "worktree",
            "add",
            "--quiet",
            "--no-checkout",
            "--lock",
            "--reason",
            spec.lock_reason,
            "-B",
            short,
            &path,
            spec.commit,
        ])?;
    }
    crate::state::failpoint::hit("worktree-registered");
    // Filling the worktree is the slow part, and safe to run beside other registrations.
    let git = Git::new(spec.path);
    git.run(["reset", "-q", "--hard", spec.commit])?;
    verify(&git, spec)
}

/// A worktree handed to an agent must be on its branch, at its commit, with an index, and
/// clean (which also rules out a checkout that lost files).
fn verify(git: &Git, spec: &WorktreeSpec) -> GitResult<()> {
    let head = readable_head(git);
    let branch = git
        .output(["symbolic-ref", "-q", "HEAD"], None)?
        .stdout_str();
    let dirty = status_porcelain(git)?;
    let problem = if head.as_deref() != Some(spec.commit) {
        Some(format!("HEAD is {head:?}, expected {}", spec.commit))
    } else if branch.trim() != spec.branch {
        Some(format!(
            "HEAD is on {}, expected {}",
            branch.trim(),
            spec.branch
        ))
    } else if !has_index(git) {
        Some("it has no index".to_string())
    } else if !dirty.is_empty() {
        Some(format!(
            "{} paths differ from the commit after checkout",
            dirty.len()
        ))
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(GitError::Command {
            args: "worktree verify".into(),
            dir: git.dir().to_path_buf(),
            stderr: format!("the worktree is not as expected: {problem}"),
        }),
    }
}

fn find_registered(repo: &Repo, path: &Path) -> GitResult<Option<WorktreeInfo>> {
    let want = canonical(path);
    Ok(list(repo)?.into_iter().find(|w| canonical(&w.path) == want))
}

fn canonical(path: &Path) -> PathBuf {
    // The worktree may be gone; canonicalise its parent then.
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        match (
            path.parent().and_then(|p| std::fs::canonicalize(p).ok()),
            path.file_name(),
        ) {
            (Some(parent), Some(name)) => parent.join(name),
            _ => path.to_path_buf(),
        }
    })
}

fn readable_head(git: &Git) -> Option<Oid> {
    let out = git
        .output(["rev-parse", "--verify", "-q", "HEAD^{commit}"], None)
        .ok()?;
    out.status
        .success()
        .then(|| out.stdout_str().trim().to_string())
}

fn has_index(git: &Git) -> bool {
    git.output(["rev-parse", "--git-path", "index"], None)
        .ok()
        .map(|out| {
            let p = PathBuf::from(out.stdout_str().trim());
            let p = if p.is_absolute() {
                p
            } else {
                git.dir().join(p)
            };
            p.exists()
        })
        .unwrap_or(false)
}

/// Removes a worktree that cannot be used as it is. Only removes a directory git registered as
/// a worktree, or one that holds nothing but a `.git` file (what a killed `worktree add`
/// leaves); anything else is the user's and is refused.
fn remove_broken(repo: &Repo, path: &Path) -> GitResult<()> {
    let path_str = path.to_string_lossy().into_owned();
    let registered = find_registered(repo, path)?.is_some();
    if path.exists() && !registered {
        let entries: Vec<_> = std::fs::read_dir(path)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if entries.iter().any(|name| name != ".git") {
            return Err(GitError::Command {
                args: "worktree add".into(),
                dir: path.to_path_buf(),
                stderr:
                    "the directory exists and is not a worktree of this repository; move it away"
                        .into(),
            });
        }
    }
    if registered {
        // Locked worktrees resist removal; unlock first (ignore "not locked").
        let _ = repo.git().output(["worktree", "unlock", &path_str], None);
        let _ = repo.git().output(
            ["worktree", "remove", "--force", "--force", &path_str],
            None,
        );
    }
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| GitError::Command {
            args: "worktree remove".into(),
            dir: path.to_path_buf(),
            stderr: e.to_string(),
        })?;
    }
    prune(repo)
}

fn prune(repo: &Repo) -> GitResult<()> {
    let _guard = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
    repo.git().run(["worktree", "prune"])?;
    Ok(())
}

/// `git status --porcelain` entries (untracked included, ignored excluded).
pub fn status_porcelain(git: &Git) -> GitResult<Vec<String>> {
    let out = git.run([
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
    ])?;
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|e| e.len() > 3)
        .map(|e| String::from_utf8_lossy(&e[3..]).into_owned())
        .collect())
}

/// If the worktree has uncommitted changes (untracked files included), records them as a commit
/// on top of HEAD, points `ref_name` at it and returns it. The worktree itself is untouched.
pub fn save_dirty(git: &Git, ref_name: &str, message: &str) -> GitResult<Option<(String, Oid)>> {
    if status_porcelain(git)?.is_empty() {
        return Ok(None);
    }
    let head = readable_head(git);
    let commit = snapshot(git, head.as_deref(), message)?;
    let name = super::integrate::keep_ref(git, ref_name, &commit, message)?;
    Ok(Some((name, commit)))
}

/// A commit of everything in the worktree as it is (tracked and untracked files, not ignored
/// ones), with `parent` as parent, built in a temporary index so the real one is untouched.
pub fn snapshot(git: &Git, parent: Option<&str>, message: &str) -> GitResult<Oid> {
    let tmp = tempfile::Builder::new()
        .prefix("streams-index-")
        .tempfile()
        .map_err(|e| GitError::Command {
            args: "snapshot".into(),
            dir: git.dir().into(),
            stderr: e.to_string(),
        })?;
    let index = tmp.path().to_string_lossy().into_owned();
    let with_index = git.with_env("GIT_INDEX_FILE", index);
    match parent {
        Some(parent) => with_index.run(["read-tree", parent])?,
        None => with_index.run(["read-tree", "--empty"])?,
    };
    with_index.run(["add", "-A"])?;
    let tree = with_index.read(["write-tree"])?;
    let mut args = vec![
        "commit-tree".to_string(),
        tree,
        "-m".into(),
        message.to_string(),
    ];
    if let Some(parent) = parent {
        args.push("-p".into());
        args.push(parent.to_string());
    }
    git.with_env("GIT_AUTHOR_NAME", "streams")
        .with_env("GIT_AUTHOR_EMAIL", "streams@localhost")
        .read(args)
}

/// Puts the worktree back on `branch` (a full ref name) at `commit`, moving that branch there,
/// and removes untracked files (ignored ones, such as build caches, stay). Whatever branch HEAD
/// was on is left alone: an agent that switched branches must not make streams reset someone
/// else's branch.
pub fn reset_to(path: &Path, branch: &str, commit: &str) -> GitResult<()> {
    let git = Git::new(path);
    let short = branch.trim_start_matches("refs/heads/");
    git.run(["checkout", "-q", "-f", "-B", short, commit])?;
    git.run(["clean", "-q", "-f", "-d"])?;
    Ok(())
}

/// Unlocks and removes a worktree (forcefully: callers saved what mattered first).
pub fn remove(repo: &Repo, path: &Path) -> GitResult<()> {
    let path_str = path.to_string_lossy().into_owned();
    let _ = repo.git().output(["worktree", "unlock", &path_str], None);
    let out = repo.git().output(
        ["worktree", "remove", "--force", "--force", &path_str],
        None,
    )?;
    if !out.status.success() && path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| GitError::Command {
            args: "worktree remove".into(),
            dir: path.to_path_buf(),
            stderr: e.to_string(),
        })?;
    }
    let _ = prune(repo);
    Ok(())
}

pub fn unlock(repo: &Repo, path: &Path) -> GitResult<()> {
    let path_str = path.to_string_lossy().into_owned();
    // "is not locked" is fine.
    let _ = repo.git().output(["worktree", "unlock", &path_str], None)?;
    Ok(())
}
