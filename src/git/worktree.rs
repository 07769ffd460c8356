//! Linked worktrees of the user's repository that streams makes for a person or a build: the
//! resolution worktree of a halted run and the gate's worktree (and, from versions before
//! private workspaces, a stream's). Each is registered with `git worktree add --lock`, one at a
//! time (parallel `worktree add` on one repository races on `.git/worktrees/`). What a person
//! left uncommitted in one is kept on a ref before it is reset or removed.
//!
//! A stream's workspace is not one of these: see `crate::workspace`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Git, GitError, GitResult, Oid, Repo};

/// Serialises worktree registration across every thread of this process.
static REGISTER: Mutex<()> = Mutex::new(());

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
            "HEAD" => current.iter_mut().for_each(|i| i.head = Some(value.into())),
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

/// The worktree's private git dir (`<common>/worktrees/<id>`), from its `.git` file.
fn admin_dir(path: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(path.join(".git")).ok()?;
    let admin = text.trim_end().strip_prefix("gitdir: ")?;
    Some(path.join(admin))
}

/// A git operation a worktree can be left in the middle of: where git keeps its state (in the
/// worktree's admin directory), how to say it, and how to forget it without touching files.
#[derive(PartialEq)]
struct Operation {
    state: &'static str,
    what: &'static str,
    /// What clears the state when a reset does not: `None` when `reset --hard` and
    /// `checkout -f` already drop it.
    quit: Option<&'static [&'static str]>,
}

/// In the order they are looked for: `git am` keeps its state in `rebase-apply` too, with a
/// marker file, so it comes before the rebases.
const OPERATIONS: [Operation; 7] = [
    Operation {
        state: "MERGE_HEAD",
        what: "a merge",
        quit: None,
    },
    Operation {
        state: "CHERRY_PICK_HEAD",
        what: "a cherry-pick",
        quit: None,
    },
    Operation {
        state: "REVERT_HEAD",
        what: "a revert",
        quit: None,
    },
    Operation {
        state: "rebase-apply/applying",
        what: "a patch application (git am)",
        quit: Some(&["am", "--quit"]),
    },
    Operation {
        state: "rebase-merge",
        what: "a rebase",
        quit: Some(&["rebase", "--quit"]),
    },
    Operation {
        state: "rebase-apply",
        what: "a rebase",
        quit: Some(&["rebase", "--quit"]),
    },
    // A cherry-pick or revert of several commits keeps this until `--continue` or `--quit`.
    Operation {
        state: "sequencer",
        what: "a cherry-pick or revert of several commits",
        quit: Some(&["cherry-pick", "--quit"]),
    },
];

fn operation(path: &Path) -> Option<&'static Operation> {
    let admin = admin_dir(path)?;
    OPERATIONS.iter().find(|op| admin.join(op.state).exists())
}

/// The git operation a worktree is in the middle of (a merge, cherry-pick, revert, rebase or
/// `git am` that stopped for conflicts or was never concluded), from the state files git keeps
/// in the worktree's admin directory.
pub fn operation_in_progress(path: &Path) -> Option<&'static str> {
    operation(path).map(|op| op.what)
}

/// Forgets an operation left half done whose state outlives `reset --hard` and `checkout -f`
/// (a rebase, `git am`, a cherry-pick sequence): the files and HEAD are as the caller just set
/// them, and the caller kept the work before. Git's own `--quit` goes first (for a rebase it
/// also saves the autostash to the stash list); if git refuses, the state directory is
/// removed, which is what `--quit` does besides.
fn forget_unfinished(git: &Git, path: &Path) -> GitResult<()> {
    // Each pass clears one; a worktree cannot hold more than a few at once.
    for _ in 0..OPERATIONS.len() {
        let Some(op) = operation(path) else {
            return Ok(());
        };
        let Some(quit) = op.quit else {
            return Ok(());
        };
        let quitted = git.output(quit.iter().copied(), None)?.status.success();
        if quitted && operation(path) != Some(op) {
            continue;
        }
        if let Some(admin) = admin_dir(path) {
            let dir = op.state.split('/').next().unwrap_or(op.state);
            std::fs::remove_dir_all(admin.join(dir)).map_err(|e| GitError::Command {
                args: quit.join(" "),
                dir: path.to_path_buf(),
                stderr: format!("could not remove {dir}: {e}"),
            })?;
        }
    }
    Ok(())
}

fn find_registered(repo: &Repo, path: &Path) -> GitResult<Option<WorktreeInfo>> {
    let want = canonical(path);
    if !path.exists() && !any_registration_names(repo, &want) {
        // A new worktree (the common case on a first run): no need for `git worktree list`,
        // a process that reads every worktree of the repository (linear in the streams).
        return Ok(None);
    }
    Ok(list(repo)?.into_iter().find(|w| canonical(&w.path) == want))
}

/// Whether any registration under the common dir's `worktrees/` (whole or half-written) names
/// `path` (canonical) as its worktree: the `gitdir` files, read without running git. An entry
/// without a readable `gitdir` counts as naming it, so the caller asks git.
fn any_registration_names(repo: &Repo, path: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(repo.common_dir().join("worktrees")) else {
        return false;
    };
    let _guard = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
    entries.filter_map(|e| e.ok()).any(|entry| {
        let admin = entry.path();
        match std::fs::read_to_string(admin.join("gitdir")) {
            Ok(target) => {
                let dot_git = admin.join(target.trim_end());
                dot_git.parent().is_some_and(|wt| canonical(wt) == path)
            }
            Err(_) => true,
        }
    })
}

/// Whether `path` is a whole worktree of `repo`: its `.git` file names a registration under the
/// common dir's `worktrees/`, and that registration (with its `HEAD` and `commondir`) names this
/// `.git` file back. Read without running git; anything less (half-created, moved, pointing at
/// another repository) is `false`, and the caller asks `git worktree list`.
pub fn is_linked(repo: &Repo, path: &Path) -> bool {
    let dot_git = path.join(".git");
    let Ok(text) = std::fs::read_to_string(&dot_git) else {
        return false;
    };
    let Some(admin) = text.trim_end().strip_prefix("gitdir: ") else {
        return false;
    };
    // Relative links (`worktree.useRelativePaths`) are relative to the file holding them.
    let admin = path.join(admin);
    let (Ok(admin), Ok(worktrees)) = (
        std::fs::canonicalize(&admin),
        std::fs::canonicalize(repo.common_dir().join("worktrees")),
    ) else {
        return false;
    };
    if admin.parent() != Some(worktrees.as_path())
        || !admin.join("HEAD").is_file()
        || !admin.join("commondir").is_file()
    {
        return false;
    }
    let Ok(back) = std::fs::read_to_string(admin.join("gitdir")) else {
        return false;
    };
    canonical(&admin.join(back.trim_end())) == canonical(&dot_git)
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
    out.status.success().then(|| out.stdout_str().trim().into())
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
fn status_porcelain(git: &Git) -> GitResult<Vec<String>> {
    let out = git.run([
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
    ])?;
    Ok(out.porcelain_paths())
}

/// The paths with uncommitted changes in the worktree at `path` (untracked files included,
/// ignored ones not).
pub fn uncommitted(path: &Path) -> GitResult<Vec<String>> {
    status_porcelain(&Git::new(path).hardened())
}

/// [`uncommitted`], looking only at the paths `under` (each a path from the worktree's top: a
/// file, or a directory and everything in it; none: everywhere). git neither reads the rest of
/// the worktree nor compares the rest of the index.
pub fn uncommitted_under(path: &Path, under: Option<&[String]>) -> GitResult<Vec<String>> {
    let Some(under) = under else {
        return uncommitted(path);
    };
    if under.is_empty() {
        return Ok(Vec::new());
    }
    let mut args: Vec<String> = [
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
        "--",
    ]
    .map(String::from)
    .to_vec();
    args.extend(under.iter().map(|p| format!(":(top,literal){p}")));
    let out = Git::new(path).hardened().run(&args)?;
    Ok(out.porcelain_paths())
}

/// Whether the worktree at `path` has uncommitted changes (untracked files included); one that
/// git cannot read counts as having them.
pub fn is_dirty(path: &Path) -> bool {
    status_porcelain(&Git::new(path).hardened()).map_or(true, |s| !s.is_empty())
}

/// If the worktree at `path` has uncommitted changes (untracked files included), records them
/// as a commit on top of HEAD, points `ref_name` at it and returns it. The worktree itself is
/// untouched.
pub fn save_dirty(
    repo: &Repo,
    path: &Path,
    ref_name: &str,
    message: &str,
) -> GitResult<Option<(String, Oid)>> {
    let git = Git::new(path).hardened();
    let git = &git;
    if status_porcelain(git)?.is_empty() {
        return Ok(None);
    }
    let head = readable_head(git);
    let commit = snapshot(git, head.as_deref(), None, message)?;
    let name = super::refs::keep_ref(repo, ref_name, &commit, message)?;
    Ok(Some((name, commit)))
}

/// Keeps everything in the worktree at `path` beyond `start` (its commits plus anything
/// uncommitted) reachable from a ref named after `ref_name` (a free variant of it: nothing
/// kept earlier is overwritten). Returns the ref and commit, or `None` when there is nothing
/// beyond `start`.
pub fn keep_work(
    repo: &Repo,
    path: &Path,
    start: &str,
    ref_name: &str,
    message: &str,
) -> GitResult<Option<(String, Oid)>> {
    let git = Git::new(path).hardened();
    let head = git.read_oid(["rev-parse", "--verify", "HEAD"])?;
    let kept = if !status_porcelain(&git)?.is_empty() {
        snapshot(&git, Some(&head), None, message)?
    } else if head != start {
        head
    } else {
        return Ok(None);
    };
    let name = super::refs::keep_ref(repo, ref_name, &kept, message)?;
    Ok(Some((name, kept)))
}

/// A commit of everything in the worktree as it is (tracked and untracked files, not ignored
/// ones), with `parent` as parent (and `also` as a second one, to keep it reachable), built in a
/// temporary index so the real one is untouched.
fn snapshot(git: &Git, parent: Option<&str>, also: Option<&str>, message: &str) -> GitResult<Oid> {
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
    for parent in parent.into_iter().chain(also) {
        args.push("-p".into());
        args.push(parent.to_string());
    }
    git.with_env("GIT_AUTHOR_NAME", "streams")
        .with_env("GIT_AUTHOR_EMAIL", "streams@localhost")
        .read_oid(args)
}

/// Makes `path` a worktree with a detached HEAD at `commit` and exactly its files (untracked
/// files removed; ignored ones, such as build caches, stay, which is why it is reused). Creates
/// it (locked) the first time; a half-created one is removed and made again.
pub fn checkout_detached(
    repo: &Repo,
    path: &Path,
    commit: &str,
    lock_reason: &str,
) -> GitResult<()> {
    if is_linked(repo, path) && path.join(".git").is_file() {
        let git = Git::new(path);
        let done = git
            .run(["checkout", "-q", "-f", "--detach", commit])
            .and_then(|_| git.run(["clean", "-q", "-f", "-d"]))
            .and_then(|_| forget_unfinished(&git, path));
        if done.is_ok() {
            return Ok(());
        }
    }
    if path.exists() || find_registered(repo, path)?.is_some() {
        remove_broken(repo, path)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| GitError::Command {
            args: "worktree add".into(),
            dir: parent.to_path_buf(),
            stderr: e.to_string(),
        })?;
    }
    let path_str = path.to_string_lossy().into_owned();
    // One registration at a time (see `REGISTER`).
    let _guard = REGISTER.lock().unwrap_or_else(|e| e.into_inner());
    repo.git().run([
        "worktree",
        "add",
        "-q",
        "--detach",
        "--lock",
        "--reason",
        lock_reason,
        &path_str,
        commit,
    ])?;
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
