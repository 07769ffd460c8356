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
    /// Full ref name (`layout::stream_branch`).
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

/// Makes `spec.path` a clean worktree on `spec.branch` at `spec.commit`, reusing what is there
/// when it can. The branch is created or moved to the commit; callers keep a ref to anything the
/// branch held that the move would orphan.
pub fn prepare(repo: &Repo, spec: &WorktreeSpec) -> GitResult<PrepareReport> {
    let mut repaired = false;
    let mut saved = None;
    // The common case (a worktree of an earlier run, whole) is read from two small files;
    // `git worktree list` costs a process and reads every worktree of the repository.
    let linked = is_linked(repo, spec.path);
    let registered = if linked {
        None
    } else {
        find_registered(repo, spec.path)?
    };

    if linked
        || (spec.path.join(".git").is_file() && registered.as_ref().is_some_and(|w| !w.prunable))
    {
        let git = Git::new(spec.path);
        // No index: registered but never filled (killed mid-checkout). Its "deleted" files are
        // not work; it is recreated below. Otherwise one `git status` tells where HEAD is, on
        // which branch, and what is uncommitted.
        let found = match has_index(&git).then(|| status(&git)) {
            None => None,
            Some(Ok(found)) => found.head.clone().map(|head| (head, found)),
            // Status cannot read it: a half-made checkout (recreated below) if HEAD is
            // unreadable too; anything else is an error, as it would be for any git command.
            Some(Err(e)) if readable_head(&git).is_some() => return Err(e),
            Some(Err(_)) => None,
        };
        if let Some((head, found)) = found {
            if !found.paths.is_empty() {
                let message = format!("uncommitted work found in {}", spec.path.display());
                let commit = snapshot(&git, Some(&head), None, &message)?;
                let kept = super::refs::keep_ref_in(&git, spec.wip_ref, &commit, &message)?;
                saved = Some((kept, commit));
            }
            let on_branch = found.branch.as_deref() == Some(spec.branch);
            if admin_dir(spec.path).is_some_and(|admin| !admin.join("locked").exists()) {
                // Locked again (an abort unlocks), so `git worktree prune` leaves it alone.
                let path = spec.path.to_string_lossy().into_owned();
                let _ = repo.git().output(
                    ["worktree", "lock", "--reason", spec.lock_reason, &path],
                    None,
                );
            }
            // A merge or rebase left half done (by a killed agent, say) would be taken for the
            // next agent's; the reset below clears it.
            let settled = operation_in_progress(spec.path).is_none();
            if on_branch && head == spec.commit && saved.is_none() && settled {
                return Ok(PrepareReport {
                    how: Prepared::Ready,
                    saved,
                    repaired,
                });
            }
            if on_branch {
                git.run(["reset", "-q", "--hard", spec.commit])?;
            } else {
                let short = crate::layout::short_branch(spec.branch);
                let args = ["checkout", "-q", "-f", "-B", short, spec.commit];
                if let Err(e) = git.run(args) {
                    if !free_branch(repo, spec, &e, &mut saved)? {
                        return Err(e);
                    }
                    git.run(args)?;
                }
            }
            forget_unfinished(&git, spec.path)?;
            // A worktree that was clean has no untracked files for `clean` to remove: the
            // reset rewrote exactly the tracked files (ignored files stay either way).
            if found.paths.is_empty() {
                // Clean before, and the reset rewrote every tracked file that differed: the
                // files are as the commit has them. Check HEAD, branch and index in-process
                // instead of another `git status` over every file.
                verify_head(&git, spec)?;
            } else {
                git.run(["clean", "-q", "-f", "-d"])?;
                verify(&git, spec)?;
            }
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
    if let Err(e) = create(repo, spec) {
        if !free_branch(repo, spec, &e, &mut saved)? {
            return Err(e);
        }
        remove_broken(repo, spec.path)?;
        create(repo, spec)?;
    }
    Ok(PrepareReport {
        how: Prepared::Created,
        saved,
        repaired,
    })
}

/// The worktree's private git dir (`<common>/worktrees/<id>`), from its `.git` file; for a
/// private workspace, its `.git` directory.
pub fn admin_dir(path: &Path) -> Option<PathBuf> {
    if super::workspace::is_workspace(path) {
        return Some(super::workspace::git_dir(path));
    }
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
pub(super) fn forget_unfinished(git: &Git, path: &Path) -> GitResult<()> {
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

/// When git refused because the branch is checked out in another worktree: if that one is
/// streams' own (an earlier run's, from before `worktree_root` moved), keep what is uncommitted
/// there and remove it, freeing the branch; returns whether it did. A checkout of the user's is
/// an error that says so.
fn free_branch(
    repo: &Repo,
    spec: &WorktreeSpec,
    error: &GitError,
    saved: &mut Option<(String, Oid)>,
) -> GitResult<bool> {
    let GitError::Command { stderr, .. } = error else {
        return Ok(false);
    };
    if !stderr.contains("already used by worktree") && !stderr.contains("already checked out") {
        return Ok(false);
    }
    let want = canonical(spec.path);
    let mut freed = false;
    for other in list(repo)? {
        if other.branch.as_deref() != Some(spec.branch) || canonical(&other.path) == want {
            continue;
        }
        if !other.is_streams(repo.common_dir()) {
            return Err(GitError::Command {
                args: "worktree add".into(),
                dir: other.path.clone(),
                stderr: format!(
                    "{} is checked out in {}, which is not a streams worktree; switch it to another branch",
                    crate::layout::short_branch(spec.branch),
                    other.path.display()
                ),
            });
        }
        if other.path.join(".git").is_file()
            && let Some(kept) = save_dirty(
                &Git::new(&other.path),
                spec.wip_ref,
                &format!("uncommitted work found in {}", other.path.display()),
            )?
        {
            *saved = Some(kept);
        }
        remove(repo, &other.path)?;
        freed = true;
    }
    Ok(freed)
}

fn create(repo: &Repo, spec: &WorktreeSpec) -> GitResult<()> {
    if let Some(parent) = spec.path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| GitError::Command {
            args: "worktree add".into(),
            dir: parent.to_path_buf(),
            stderr: e.to_string(),
        })?;
    }
    let short = crate::layout::short_branch(spec.branch);
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
    crate::failpoint::hit("worktree-registered");
    // Filling the worktree is the slow part, and safe to run beside other registrations.
    let git = Git::new(spec.path);
    git.run(["reset", "-q", "--hard", spec.commit])?;
    // A full check, once per new worktree: a checkout can exit 0 and still leave files git
    // sees as changed (a file committed with CRLF under a `text` attribute, an LFS file that
    // should have been a pointer), and the agent would be blamed for them.
    verify(&git, spec)
}

/// Up to three paths, and how many more.
fn examples(paths: &[String]) -> String {
    let mut text = crate::text::quote_paths(&paths[..paths.len().min(3)]);
    if paths.len() > 3 {
        text.push_str(&format!(" and {} more", paths.len() - 3));
    }
    text
}

/// A worktree handed to an agent must be on its branch, at its commit, with an index, and
/// clean (which also rules out a checkout that lost files).
pub(super) fn verify(git: &Git, spec: &WorktreeSpec) -> GitResult<()> {
    let Status {
        head,
        branch,
        paths: dirty,
        untracked,
        ..
    } = status(git)?;
    let problem = if let Some(problem) = head_problem(git, spec, head, branch.as_deref()) {
        Some(problem)
    } else if !dirty.is_empty() && untracked.len() == dirty.len() {
        // New files only: nothing git itself would write. Something wrote into it meanwhile.
        Some(format!(
            "files appeared in it while it was being checked out ({}): another process writes              there (an agent of another stream?); an agent runs as you and can write anywhere              you can unless it runs in a sandbox",
            examples(&dirty)
        ))
    } else if !dirty.is_empty() {
        Some(format!(
            "git shows {} right after checking it out ({}); usually line-ending rules \
             (.gitattributes) or an LFS filter that do not match what is committed: \
             `git add --renormalize .` and a commit fix it",
            match dirty.len() {
                1 => "1 file as changed".to_string(),
                n => format!("{n} files as changed"),
            },
            examples(&dirty)
        ))
    } else {
        None
    };
    as_expected(problem)
}

/// What is wrong with a new worktree's HEAD, branch and index, if anything. A wrong `head` is
/// shown in its debug form, as the caller's type gives it.
fn head_problem<H: AsRef<str> + std::fmt::Debug>(
    git: &Git,
    spec: &WorktreeSpec,
    head: Option<H>,
    branch: Option<&str>,
) -> Option<String> {
    if head.as_ref().map(AsRef::as_ref) != Some(spec.commit) {
        Some(format!("HEAD is {head:?}, expected {}", spec.commit))
    } else if branch != Some(spec.branch) {
        Some(format!(
            "HEAD is on {}, expected {}",
            branch.unwrap_or("no branch"),
            spec.branch
        ))
    } else if !has_index(git) {
        Some("it has no index".to_string())
    } else {
        None
    }
}

/// The error for a worktree that is not as expected (the problem found, if any).
fn as_expected(problem: Option<String>) -> GitResult<()> {
    match problem {
        None => Ok(()),
        Some(problem) => Err(GitError::Library {
            context: "it is not as expected".into(),
            message: problem,
        }),
    }
}

/// [`verify`] for a worktree whose files git just set from a clean state: HEAD on the branch at
/// the commit, and an index; read with libgit2, without a `git status` over every file.
fn verify_head(git: &Git, spec: &WorktreeSpec) -> GitResult<()> {
    let problem = match git2::Repository::open(git.dir()) {
        Err(e) => Some(format!("it cannot be opened: {}", e.message())),
        Ok(r) => {
            let head = r.head().ok();
            let name = head.as_ref().and_then(|h| h.name().map(str::to_string));
            let commit = head
                .as_ref()
                .and_then(|h| h.peel_to_commit().ok())
                .map(|c| c.id().to_string());
            head_problem(git, spec, commit, name.as_deref())
        }
    };
    as_expected(problem)
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
fn is_linked(repo: &Repo, path: &Path) -> bool {
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

fn has_index(git: &Git) -> bool {
    // A linked worktree's index is in its registration directory, named by its `.git` file.
    if let Ok(text) = std::fs::read_to_string(git.dir().join(".git"))
        && let Some(admin) = text.trim_end().strip_prefix("gitdir: ")
    {
        return git.dir().join(admin).join("index").exists();
    }
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

/// A worktree as one `git status --porcelain=v2 --branch` sees it.
#[derive(Debug, Default)]
pub struct Status {
    /// HEAD's commit (`None` on an unborn branch).
    pub head: Option<Oid>,
    /// The full name of the branch HEAD is on (`None` when detached).
    pub branch: Option<String>,
    /// Every path that differs from HEAD: changed, added, deleted (both sides of a rename),
    /// unmerged, untracked; ignored files excluded. The same paths as `status_porcelain`.
    pub paths: Vec<String>,
    /// The paths among them whose file differs from the index (to stage before committing):
    /// everything but changes already staged, such as a `git mv` or `git rm` by the agent.
    pub unstaged: Vec<String>,
    /// Paths with unresolved merge conflicts in the index.
    pub unmerged: Vec<String>,
    /// Paths git does not track (not ignored).
    pub untracked: Vec<String>,
    /// Paths an ignore rule matches (a directory as a whole when the rule names it), when asked
    /// for ([`status_with_ignored`]).
    pub ignored: Vec<String>,
}

/// HEAD, its branch and the uncommitted paths of a worktree, from one git process (instead of
/// `rev-parse`, `symbolic-ref` and `status`: each git process costs milliseconds).
pub(in crate::git) fn status(git: &Git) -> GitResult<Status> {
    status_of(git, "--ignored=no")
}

/// [`status`], with the ignored paths too (`--ignored=matching`): what the agent wrote that git
/// ignores is named in its result, from the same walk of the worktree.
pub(in crate::git) fn status_with_ignored(git: &Git) -> GitResult<Status> {
    status_of(git, "--ignored=matching")
}

fn status_of(git: &Git, ignored: &str) -> GitResult<Status> {
    let out = git.run([
        "status",
        "--porcelain=v2",
        "--branch",
        "-z",
        "--untracked-files=all",
        ignored,
        "--no-renames",
    ])?;
    let mut found = Status::default();
    let mut fields = out.stdout.split(|b| *b == 0);
    while let Some(field) = fields.next() {
        let line = String::from_utf8_lossy(field);
        if let Some(oid) = line.strip_prefix("# branch.oid ") {
            found.head = (oid != "(initial)").then(|| oid.into());
        } else if let Some(name) = line.strip_prefix("# branch.head ") {
            // Git shortens `refs/heads/<name>` to `<name>` and prints other refs in full.
            found.branch = match name {
                "(detached)" => None,
                _ if name.starts_with("refs/") => Some(name.to_string()),
                _ => Some(crate::layout::branch_ref(name)),
            };
        } else if line.starts_with('#') || line.is_empty() {
            continue;
        } else if let Some(path) = line.strip_prefix("! ") {
            found.ignored.push(path.to_string());
        } else {
            // `1 XY sub mH mI mW hH hI path`, `u XY sub m1 m2 m3 mW h1 h2 h3 path`,
            // `2 XY sub mH mI mW hH hI Xscore path` NUL `origPath`, `? path`.
            let (kind, skip) = match line.as_bytes()[0] {
                b'1' => (1, 8),
                b'2' => (2, 9),
                b'u' => (1, 10),
                _ => (1, 1),
            };
            // XY: index and worktree status; `.` in Y means the file matches the index.
            let staged_only =
                matches!(line.as_bytes()[0], b'1' | b'2') && line.as_bytes().get(3) == Some(&b'.');
            if let Some(path) = line.splitn(skip + 1, ' ').nth(skip) {
                if line.as_bytes()[0] == b'?' {
                    found.untracked.push(path.to_string());
                }
                if line.as_bytes()[0] == b'u' {
                    found.unmerged.push(path.to_string());
                }
                found.paths.push(path.to_string());
                if !staged_only {
                    found.unstaged.push(path.to_string());
                }
            }
            if kind == 2
                && let Some(orig) = fields.next()
            {
                found.paths.push(String::from_utf8_lossy(orig).into_owned());
            }
        }
    }
    Ok(found)
}

/// `git status --porcelain` entries (untracked included, ignored excluded).
pub(in crate::git) fn status_porcelain(git: &Git) -> GitResult<Vec<String>> {
    let out = git.run([
        "status",
        "--porcelain=v1",
        "-z",
        "--untracked-files=all",
        "--no-renames",
    ])?;
    Ok(out.porcelain_paths())
}

/// If the worktree has uncommitted changes (untracked files included), records them as a commit
/// on top of HEAD, points `ref_name` at it and returns it. The worktree itself is untouched.
pub(in crate::git) fn save_dirty(
    git: &Git,
    ref_name: &str,
    message: &str,
) -> GitResult<Option<(String, Oid)>> {
    if status_porcelain(git)?.is_empty() {
        return Ok(None);
    }
    let head = readable_head(git);
    let commit = snapshot(git, head.as_deref(), None, message)?;
    let name = super::refs::keep_ref_in(git, ref_name, &commit, message)?;
    Ok(Some((name, commit)))
}

/// A commit of everything in the worktree as it is (tracked and untracked files, not ignored
/// ones), with `parent` as parent (and `also` as a second one, to keep it reachable), built in a
/// temporary index so the real one is untouched.
pub(in crate::git) fn snapshot(
    git: &Git,
    parent: Option<&str>,
    also: Option<&str>,
    message: &str,
) -> GitResult<Oid> {
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

/// Puts the worktree back on `branch` (a full ref name) at `commit`, moving that branch there,
/// and removes untracked files (ignored ones, such as build caches, stay). Whatever branch HEAD
/// was on is left alone: an agent that switched branches must not make streams reset someone
/// else's branch.
pub fn reset_to(path: &Path, branch: &str, commit: &str) -> GitResult<()> {
    let git = Git::new(path);
    let short = crate::layout::short_branch(branch);
    git.run(["checkout", "-q", "-f", "-B", short, commit])?;
    git.run(["clean", "-q", "-f", "-d"])?;
    forget_unfinished(&git, path)
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
