//! Stream workspaces: private repositories.
//!
//! A linked worktree shares the user's refs, stash, config, hooks and object store, so an agent's
//! own `git stash pop`, `git gc --prune=now`, `git branch -f` or `git config` reached the user's
//! repository. A workspace is instead a working tree with a git directory of its own
//! (`<workspace>/.git`), which borrows the user's objects read-only through
//! `objects/info/alternates` and holds one branch, the stream's. Everything an agent's git
//! commands write (objects, refs, stash, config, hooks, reflogs) stays in that directory.
//!
//! Measured on a 5,000-file repository: `git init` + an alternates file + `update-ref` costs
//! about 19 ms, `git clone --shared --no-checkout` about 37 ms (it also copies every ref and
//! records the user's repository as `origin`, a remote an agent could push to), and `git init`
//! with a fetch of one ref and no alternates about 800 ms (it copies every object). The
//! checkout that follows costs the same for all three.
//!
//! streams never trusts what the agent left in the git directory: before its own commands it
//! rewrites the config (the user's repository config, included, then streams' own settings),
//! the alternates file, and removes what would send git elsewhere (`commondir`, `gitdir`) or
//! change what git sees (`info/`, hooks). Its commands name the git directory and work tree
//! explicitly and run no hooks and no fsmonitor. Results reach the user's repository only by
//! streams copying the objects of a commit it checked, each checked against its name (see
//! [`bring`]).

use std::path::{Path, PathBuf};

use super::worktree::{PrepareReport, Prepared, Status};
use super::{Git, GitError, GitResult, Oid, Repo};

/// What [`prepare`] is asked for.
pub struct WorkspaceSpec<'a> {
    pub path: &'a Path,
    /// Full ref name: `refs/heads/streams/<plan>/<stream>`; the workspace's only branch, and
    /// the user's branch of the same name that streams moves.
    pub branch: &'a str,
    pub commit: &'a str,
    /// Where to keep (in the user's repository) uncommitted work found in the workspace.
    pub wip_ref: &'a str,
    /// Only these paths checked out (a stream that declares `reads`); `None`: every file.
    pub sparse: Option<&'a super::Sparse>,
}

/// The git directory of a workspace.
pub fn git_dir(path: &Path) -> PathBuf {
    path.join(".git")
}

/// A `git` for streams' own commands in a workspace: the git directory and work tree named
/// explicitly (a `.git` file the agent wrote cannot send it elsewhere), no hooks, no fsmonitor.
pub(super) fn git(path: &Path) -> Git {
    Git::new(path)
        .with_env("GIT_DIR", git_dir(path).to_string_lossy())
        .with_env("GIT_WORK_TREE", path.to_string_lossy())
        .with_env("GIT_CONFIG_COUNT", "3")
        .with_env("GIT_CONFIG_KEY_0", "core.hooksPath")
        .with_env("GIT_CONFIG_VALUE_0", "/dev/null")
        .with_env("GIT_CONFIG_KEY_1", "core.fsmonitor")
        .with_env("GIT_CONFIG_VALUE_1", "false")
        // Never open an editor or pager, never prompt.
        .with_env("GIT_CONFIG_KEY_2", "core.pager")
        .with_env("GIT_CONFIG_VALUE_2", "cat")
}

/// Whether `path` holds a workspace: a real `.git` directory (not a symlink, not a `.git` file
/// naming another repository's worktree registration).
pub fn is_workspace(path: &Path) -> bool {
    std::fs::symlink_metadata(git_dir(path)).is_ok_and(|m| m.is_dir())
}

/// Whether `path` is a linked worktree (a `.git` file): what earlier versions of streams made.
pub fn is_linked_worktree(path: &Path) -> bool {
    std::fs::symlink_metadata(git_dir(path)).is_ok_and(|m| m.is_file())
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> GitError {
    GitError::Command {
        args: what.to_string(),
        dir: path.to_path_buf(),
        stderr: e.to_string(),
    }
}

/// The workspace's git directory was damaged beyond what streams repairs: not a directory any
/// more, or without its objects.
fn damaged(path: &Path, what: &str) -> GitError {
    GitError::Library {
        context: format!("the workspace {} is damaged", path.display()),
        message: what.to_string(),
    }
}

/// Puts the workspace's git directory back under streams' control (see the module docs), and
/// removes lock files there: called only when no process of an agent can be running (before
/// its task, after it and its strays are dead), so any lock is a killed git's. An error means
/// it is beyond repair: not a directory any more, or its HEAD is gone.
pub fn sanitize(repo: &Repo, path: &Path) -> GitResult<()> {
    let dir = git_dir(path);
    if !is_workspace(path) {
        return Err(damaged(path, ".git is not a directory any more"));
    }
    let objects = dir.join("objects");
    if !std::fs::symlink_metadata(&objects).is_ok_and(|m| m.is_dir()) {
        return Err(damaged(path, ".git/objects is not a directory any more"));
    }
    if !dir.join("HEAD").is_file() {
        return Err(damaged(path, ".git/HEAD is gone"));
    }
    // Everything streams removes or writes here, beneath the git dir and through no link the
    // agent put there (a `.git/info` that is a link to elsewhere goes, not what it points at).
    let ours = crate::beneath::Dir::open(&dir).map_err(|e| io_error("sanitize", &dir, e))?;
    // Files that make git treat this as someone else's worktree, or see other files. In
    // `info/`, only a sparse workspace's patterns stay (`sparse::apply` checks them against
    // what streams asked for before every task).
    let kept = super::sparse::FILES;
    let info: Vec<PathBuf> = match ours.kind("info") {
        Ok(Some(crate::beneath::Kind::Dir)) => ours
            .names("info")
            .unwrap_or_default()
            .into_iter()
            .filter(|n| !kept.iter().any(|k| n == *k))
            .map(|n| Path::new("info").join(n))
            .collect(),
        _ => vec![PathBuf::from("info")],
    };
    for p in ["commondir", "gitdir"]
        .map(PathBuf::from)
        .into_iter()
        .chain(info)
    {
        ours.remove(&p)
            .map_err(|e| io_error("sanitize", &dir.join(&p), e))?;
    }
    for lock in super::locks::in_workspace(path) {
        ours.relative(&lock)
            .and_then(|rel| ours.remove(rel))
            .map_err(|e| io_error("sanitize", &lock, e))?;
    }
    write_control_files(repo, path)
}

/// The config and alternates streams wants: the user's repository config (identity, filters,
/// line endings behave as in the user's checkout), then what keeps the workspace its own.
/// Written beneath the git dir, through no link the agent put there.
fn write_control_files(repo: &Repo, path: &Path) -> GitResult<()> {
    let dir = git_dir(path);
    let ours = crate::beneath::Dir::open(&dir).map_err(|e| io_error("sanitize", &dir, e))?;
    let quote = |p: &Path| {
        p.to_string_lossy()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    let config = format!(
        "# Written by streams: this workspace's own settings are reset before every task.\n\
         [include]\n\tpath = \"{}\"\n\
         [core]\n\trepositoryformatversion = 0\n\tbare = false\n\tworktree = \"{}\"\n\
         \tlogallrefupdates = true\n{}\
         [gc]\n\tauto = 0\n\
         [maintenance]\n\tauto = false\n",
        quote(&repo.common_dir().join("config")),
        quote(path),
        super::sparse::config_lines(&dir),
    );
    // A file the agent put there (a link included) is replaced, never written through.
    let write = |rel: &str, contents: &[u8]| {
        ours.write_if_changed(rel, contents)
            .map(drop)
            .map_err(|e| io_error("write", &dir.join(rel), e))
    };
    write("config", config.as_bytes())?;
    // The user's own ignore and attribute rules (`.git/info/`) hold here as in their checkout.
    for name in ["exclude", "attributes"] {
        let theirs = repo.common_dir().join("info").join(name);
        let rel = format!("info/{name}");
        match std::fs::read(&theirs) {
            Ok(text) => write(&rel, &text)?,
            Err(_) => {
                let _ = ours.remove(&rel);
            }
        }
    }
    let alternates = format!("{}\n", repo.common_dir().join("objects").display());
    write("objects/info/alternates", alternates.as_bytes())
}

/// Makes `spec.path` a clean workspace on `spec.branch` at `spec.commit`, reusing what is there
/// when it can, and points the user's branch of that name at the commit too. Uncommitted work
/// found there is kept on `spec.wip_ref` in the user's repository first.
pub fn prepare(repo: &Repo, spec: &WorkspaceSpec) -> GitResult<PrepareReport> {
    let mut saved = None;
    let mut repaired = false;
    if is_linked_worktree(spec.path) {
        // An earlier version's linked worktree: keep what it holds, then replace it.
        if let Some(kept) = super::worktree::save_dirty(
            &Git::new(spec.path),
            spec.wip_ref,
            &format!("uncommitted work found in {}", spec.path.display()),
        )
        .ok()
        .flatten()
        {
            saved = Some(kept);
        }
        super::worktree::remove(repo, spec.path)?;
        repaired = true;
    }
    set_user_branch(repo, spec)?;
    if is_workspace(spec.path) {
        // `None`: unreadable, its files kept: recreated below. An error (a reset that failed,
        // a full disk) is returned: what is there may not be kept yet.
        if let Some(how) = reuse(repo, spec, &mut saved)? {
            return Ok(PrepareReport {
                how,
                saved,
                repaired,
            });
        }
        repaired = true;
    }
    if spec.path.exists() {
        remove_dir(spec.path)?;
    }
    create(repo, spec)?;
    Ok(PrepareReport {
        how: Prepared::Created,
        saved,
        repaired,
    })
}

/// Moves a workspace prepared ahead at `from` (clean then, on its branch, nothing run in it
/// since) on to `spec.commit`: its git directory put back under streams' control, and a
/// checkout that writes only the files that differ between the two commits. No status first:
/// the preparation checked the workspace, and the checkout is not forced, so it refuses
/// rather than overwrite a file changed since (the caller then prepares the workspace in full,
/// which keeps what it finds).
pub fn advance(repo: &Repo, spec: &WorkspaceSpec, from: &str) -> GitResult<()> {
    sanitize(repo, spec.path)?;
    set_user_branch(repo, spec)?;
    if from == spec.commit {
        return Ok(());
    }
    let short = spec.branch.trim_start_matches("refs/heads/");
    git(spec.path).run(["checkout", "-q", "-B", short, spec.commit])?;
    Ok(())
}

/// The user's branch follows the workspace's: at the task's start until streams brings the
/// task's result. Whatever it held is the caller's to have kept (as with `checkout -B`).
fn set_user_branch(repo: &Repo, spec: &WorkspaceSpec) -> GitResult<()> {
    if repo.ref_target(spec.branch)?.as_deref() != Some(spec.commit) {
        repo.git().run([
            "update-ref",
            "-m",
            "streams: stream branch at the task's start",
            spec.branch,
            spec.commit,
        ])?;
    }
    Ok(())
}

/// Resets an existing workspace; `None` when it cannot be read and must be recreated (after
/// its files were kept, if they could be).
fn reuse(
    repo: &Repo,
    spec: &WorkspaceSpec,
    saved: &mut Option<(String, Oid)>,
) -> GitResult<Option<Prepared>> {
    if sanitize(repo, spec.path).is_err() {
        *saved = keep_files(repo, spec.path, spec.commit, spec.wip_ref)?.or(saved.take());
        return Ok(None);
    }
    let git = git(spec.path);
    let found = match status(&git) {
        Ok(found) if found.head.is_some() && has_index(spec.path) => found,
        _ => {
            *saved = keep_files(repo, spec.path, spec.commit, spec.wip_ref)?.or(saved.take());
            return Ok(None);
        }
    };
    let head = found.head.clone().unwrap_or_default();
    if !found.paths.is_empty() {
        let message = format!("uncommitted work found in {}", spec.path.display());
        let commit = super::worktree::snapshot(&git, Some(&head), None, &message)?;
        bring(repo, spec.path, &commit)?;
        let kept = super::refs::keep_ref(repo, spec.wip_ref, &commit, &message)?;
        *saved = Some((kept, commit));
    }
    // Before the checks below: a change of the sparse set rewrites the files.
    let changed = super::sparse::apply(&git, &git_dir(spec.path), spec.sparse)?;
    if changed {
        sanitize(repo, spec.path)?;
    }
    let on_branch = found.branch.as_deref() == Some(spec.branch);
    let settled = super::worktree::operation_in_progress(spec.path).is_none();
    if on_branch && head == spec.commit && found.paths.is_empty() && settled {
        return Ok(Some(Prepared::Ready));
    }
    if found.paths.is_empty() && !changed {
        // Nothing untracked to remove: the status just said so (a `git clean` would walk every
        // directory to find nothing). A sparse set that changed rewrote the files: cleaned.
        sanitize(repo, spec.path)?;
        let short = spec.branch.trim_start_matches("refs/heads/");
        git.run(["checkout", "-q", "-f", "-B", short, spec.commit])?;
        super::worktree::forget_unfinished(&git, spec.path)?;
    } else {
        reset_to(repo, spec.path, spec.branch, spec.commit)?;
    }
    Ok(Some(Prepared::Reused))
}

fn status(git: &Git) -> GitResult<Status> {
    super::worktree::status(git)
}

fn has_index(path: &Path) -> bool {
    git_dir(path).join("index").is_file()
}

/// Removes a directory streams made for a workspace. Refuses one that is neither a workspace,
/// a linked worktree nor empty: that is the user's.
fn remove_dir(path: &Path) -> GitResult<()> {
    let empty = std::fs::read_dir(path).is_ok_and(|mut d| d.next().is_none());
    if !empty && !is_workspace(path) && !is_linked_worktree(path) {
        return Err(GitError::Command {
            args: "workspace".into(),
            dir: path.to_path_buf(),
            stderr: "the directory exists and is not a streams workspace; move it away".into(),
        });
    }
    std::fs::remove_dir_all(path).map_err(|e| io_error("remove workspace", path, e))
}

/// Files a checkout must write before git's parallel checkout starts workers.
const PARALLEL_THRESHOLD: &str = "checkout.thresholdForParallelism=2000";

/// Workers for one checkout: the CPUs, up to 8 (git's own measurements show little gain past
/// that, and other streams' checkouts run beside it).
fn checkout_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
}

fn create(repo: &Repo, spec: &WorkspaceSpec) -> GitResult<()> {
    std::fs::create_dir_all(spec.path).map_err(|e| io_error("create workspace", spec.path, e))?;
    let short = spec.branch.trim_start_matches("refs/heads/");
    // No template: no sample hooks, no description; streams writes the config itself.
    Git::new(spec.path).run([
        "init",
        "-q",
        "--template=",
        "--initial-branch",
        short,
        &spec.path.to_string_lossy(),
    ])?;
    write_control_files(repo, spec.path)?;
    crate::failpoint::hit("worktree-registered");
    let git = git(spec.path);
    // Sparse before the checkout, so that only the sparse set is written.
    if super::sparse::apply(&git, &git_dir(spec.path), spec.sparse)? {
        write_control_files(repo, spec.path)?;
    }
    // Filling a fresh workspace is the slow part on a large tree: git's parallel checkout
    // writes files from several processes once there are enough of them (below the threshold,
    // starting the workers costs more than it saves; git counts the files itself).
    let workers = format!("checkout.workers={}", checkout_workers());
    git.run([
        "-c",
        &workers,
        "-c",
        PARALLEL_THRESHOLD,
        "checkout",
        "-q",
        "-f",
        "-B",
        short,
        spec.commit,
    ])?;
    // A checkout can leave files git shows as changed (line-ending rules, an LFS filter that
    // do not match what is committed): the stream stops with the cause, not its agent blamed.
    super::worktree::verify(
        &git,
        &super::worktree::WorktreeSpec {
            path: spec.path,
            branch: spec.branch,
            commit: spec.commit,
            lock_reason: "",
            wip_ref: spec.wip_ref,
        },
    )
}

/// Puts the workspace back on `branch` at `commit` (moving that branch there), removes
/// untracked files (ignored ones, such as build caches, stay) and forgets a git operation left
/// half done. Other branches, tags and the stash of the workspace are the agent's and stay.
pub fn reset_to(repo: &Repo, path: &Path, branch: &str, commit: &str) -> GitResult<()> {
    sanitize(repo, path)?;
    let git = git(path);
    let short = branch.trim_start_matches("refs/heads/");
    git.run(["checkout", "-q", "-f", "-B", short, commit])?;
    git.run(["clean", "-q", "-f", "-d"])?;
    super::worktree::forget_unfinished(&git, path)
}

/// Copies `oid` and what it needs from the workspace into the user's repository (a fetch: the
/// workspace's objects that the user's repository lacks). Nothing refers to it there yet: the
/// caller points a ref at it.
pub fn bring(repo: &Repo, path: &Path, oid: &str) -> GitResult<()> {
    bring_to(repo, path, oid, None)
}

/// An object of the workspace that does not hash to its name: overwritten, or damaged.
fn forged(path: &Path, id: git2::Oid) -> GitError {
    damaged(
        path,
        &format!("its object {id} does not hold what its name says (it was overwritten)"),
    )
}

/// [`bring`], pointing `dest` (a full ref name) at `oid` in the same step.
pub fn bring_to(repo: &Repo, path: &Path, oid: &str, dest: Option<&str>) -> GitResult<()> {
    if share_objects(repo, path, oid)? {
        if let Some(dest) = dest {
            repo.git()
                .run(["update-ref", "-m", "streams: task result", dest, oid])?;
        }
        return Ok(());
    }
    // A fetch when the workspace holds packs (an agent ran `git gc`) or very many objects:
    // it transfers only what `oid` needs.
    let refspec = match dest {
        Some(dest) => format!("+{oid}:{dest}"),
        None => oid.to_string(),
    };
    let source = path.to_string_lossy().into_owned();
    repo.git().run([
        // Protocol v2 lets a local fetch ask for a commit by id; the user's config may pin v0.
        "-c",
        "protocol.version=2",
        "fetch",
        "-q",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-auto-gc",
        "--no-recurse-submodules",
        &source,
        &refspec,
    ])?;
    Ok(())
}

/// The most objects [`share_objects`] copies itself. Past that (an agent that staged a build
/// tree, then dropped it) a fetch takes only what the commit needs.
const SHARE_LIMIT: usize = 2_000;

/// Copies the objects of the workspace's own store that the user's repository lacks into it,
/// in process (a fetch costs two git processes and a walk): each one read, checked against its
/// name (an object that does not hash to its name is an error, as in a fetch), and written
/// whole (a temporary file renamed) before anything refers to it. Then the check a fetch makes:
/// everything each copied object refers to is in the user's repository, and so is `oid`; the
/// rest was there already. A run killed half way leaves only whole objects, and the next call
/// copies what is missing and checks again. `false`: left to a fetch (the workspace holds
/// packs, or too many objects).
fn share_objects(repo: &Repo, path: &Path, oid: &str) -> GitResult<bool> {
    let objects = git_dir(path).join("objects");
    let packed = std::fs::read_dir(objects.join("pack")).is_ok_and(|mut d| {
        d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".pack")))
    });
    if packed {
        return Ok(false);
    }
    let user = repo.open()?;
    let user_odb = user
        .odb()
        .map_err(|e| GitError::library("could not open the object store", e))?;
    let mut missing = Vec::new();
    for dir in std::fs::read_dir(&objects).map_err(|e| io_error("share objects", &objects, e))? {
        let dir = dir.map_err(|e| io_error("share objects", &objects, e))?;
        let prefix = dir.file_name().to_string_lossy().into_owned();
        if prefix.len() != 2 || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            // Temporary files of a git killed mid-write are not objects.
            let Ok(id) = git2::Oid::from_str(&name) else {
                continue;
            };
            if name.len() == 40 && !user_odb.exists(id) {
                missing.push(id);
                if missing.len() > SHARE_LIMIT {
                    return Ok(false);
                }
            }
        }
    }
    let own = git2::Odb::new().map_err(|e| GitError::library("share objects", e))?;
    own.add_disk_alternate(&objects.to_string_lossy())
        .map_err(|e| GitError::library("could not read the workspace's objects", e))?;
    for &id in &missing {
        let object = own.read(id).map_err(|e| {
            if e.message().contains("hash mismatch") {
                forged(path, id)
            } else {
                GitError::library(format!("could not read object {id}"), e)
            }
        })?;
        let hashed = git2::Oid::hash_object(object.kind(), object.data())
            .map_err(|e| GitError::library("share objects", e))?;
        if hashed != id {
            return Err(forged(path, id));
        }
        user_odb
            .write(object.kind(), object.data())
            .map_err(|e| GitError::library(format!("could not write object {id}"), e))?;
    }
    // Connected: what the copied objects refer to is there.
    let absent = |id: git2::Oid| (!user_odb.exists(id)).then_some(id);
    for &id in &missing {
        let refers: Vec<git2::Oid> = match user_odb.read_header(id).map(|(_, kind)| kind) {
            Ok(git2::ObjectType::Commit) => {
                let commit = user
                    .find_commit(id)
                    .map_err(|e| GitError::library(format!("could not read {id}"), e))?;
                std::iter::once(commit.tree_id())
                    .chain(commit.parent_ids())
                    .collect()
            }
            Ok(git2::ObjectType::Tree) => {
                let tree = user
                    .find_tree(id)
                    .map_err(|e| GitError::library(format!("could not read {id}"), e))?;
                // A submodule's commit (a gitlink) is not in this repository.
                tree.iter()
                    .filter(|e| e.kind() != Some(git2::ObjectType::Commit))
                    .map(|e| e.id())
                    .collect()
            }
            Ok(git2::ObjectType::Tag) => {
                let tag = user
                    .find_tag(id)
                    .map_err(|e| GitError::library(format!("could not read {id}"), e))?;
                vec![tag.target_id()]
            }
            _ => Vec::new(),
        };
        if let Some(gone) = refers.into_iter().find_map(absent) {
            return Err(damaged(
                path,
                &format!("object {gone} is missing (referred to by {id})"),
            ));
        }
    }
    let wanted = super::commit::parse_oid(oid)?;
    Ok(absent(wanted).is_none())
}

/// Keeps the workspace's files as they are on `ref_name` in the user's repository, as a commit
/// on top of `parent`, read through the user's repository (for a workspace whose own git
/// directory is unusable). `None` when they do not differ from `parent`.
pub fn keep_files(
    repo: &Repo,
    path: &Path,
    parent: &str,
    ref_name: &str,
) -> GitResult<Option<(String, Oid)>> {
    if !path.is_dir() {
        return Ok(None);
    }
    let tmp = tempfile::Builder::new()
        .prefix("streams-index-")
        .tempfile()
        .map_err(|e| io_error("snapshot", path, e))?;
    let git = Git::new(path)
        .with_env("GIT_DIR", repo.common_dir().to_string_lossy())
        .with_env("GIT_WORK_TREE", path.to_string_lossy())
        .with_env("GIT_INDEX_FILE", tmp.path().to_string_lossy())
        .with_env("GIT_CONFIG_COUNT", "1")
        .with_env("GIT_CONFIG_KEY_0", "core.hooksPath")
        .with_env("GIT_CONFIG_VALUE_0", "/dev/null");
    git.run(["read-tree", parent])?;
    // The workspace's own (damaged) git directory is not content.
    git.run(["add", "-A", "--", ".", ":(exclude).git"])?;
    let tree = git.read(["write-tree"])?;
    if tree == super::commit::tree_of(repo, parent)? {
        return Ok(None);
    }
    let message = "streams: files of a workspace whose git directory was damaged";
    let commit = git
        .with_env("GIT_AUTHOR_NAME", "streams")
        .with_env("GIT_AUTHOR_EMAIL", "streams@localhost")
        .with_env("GIT_COMMITTER_NAME", "streams")
        .with_env("GIT_COMMITTER_EMAIL", "streams@localhost")
        .read_oid(["commit-tree", &tree, "-p", parent, "-m", message])?;
    let name = super::refs::keep_ref(repo, ref_name, &commit, message)?;
    Ok(Some((name, commit)))
}

/// A commit on top of `commit` (made in the workspace) in which each nested repository under
/// `paths` is its files rather than a gitlink (its own `.git` left out), brought into the
/// user's repository: so that keeping a task's work keeps what an agent wrote there.
pub fn inline_nested(repo: &Repo, path: &Path, commit: &str, paths: &[String]) -> GitResult<Oid> {
    let tmp = |what: &str| {
        tempfile::Builder::new()
            .prefix(what)
            .tempfile()
            .map_err(|e| io_error("keep nested repositories", path, e))
    };
    let index = tmp("streams-index-")?;
    let git = git(path).with_env("GIT_INDEX_FILE", index.path().to_string_lossy());
    git.run(["read-tree", commit])?;
    for nested in paths {
        let sub_index = tmp("streams-index-")?;
        let sub = Git::new(path.join(nested))
            .with_env("GIT_DIR", git_dir(path).to_string_lossy())
            .with_env("GIT_WORK_TREE", path.join(nested).to_string_lossy())
            .with_env("GIT_INDEX_FILE", sub_index.path().to_string_lossy());
        sub.run(["read-tree", "--empty"])?;
        sub.run(["add", "-A", "."])?;
        let tree = sub.read(["write-tree"])?;
        git.run(["update-index", "--force-remove", "--", nested])?;
        git.run(["read-tree", &format!("--prefix={nested}/"), &tree])?;
    }
    let tree = git.read(["write-tree"])?;
    let message = format!(
        "streams: nested repositories kept as files: {}",
        paths.join(", ")
    );
    let with_files = git
        .with_env("GIT_AUTHOR_NAME", "streams")
        .with_env("GIT_AUTHOR_EMAIL", "streams@localhost")
        .with_env("GIT_COMMITTER_NAME", "streams")
        .with_env("GIT_COMMITTER_EMAIL", "streams@localhost")
        .read_oid(["commit-tree", &tree, "-p", commit, "-m", &message])?;
    bring(repo, path, &with_files)?;
    Ok(with_files)
}

/// The workspace's HEAD when it is a commit the user's repository does not have: work made in
/// the workspace (by a person, after the run) that removing it would lose.
pub fn unbrought_head(repo: &Repo, path: &Path) -> Option<Oid> {
    if !is_workspace(path) {
        return None;
    }
    let out = git(path)
        .output(["rev-parse", "-q", "--verify", "HEAD^{commit}"], None)
        .ok()?;
    let head = out.stdout_str().trim().to_string();
    if !out.status.success() || head.is_empty() {
        return None;
    }
    let oid = super::commit::parse_oid(&head).ok()?;
    let missing = repo.open().ok()?.find_object(oid, None).is_err();
    missing.then_some(head.into())
}

/// Removes a workspace (forcefully: callers kept what mattered first).
pub fn remove(path: &Path) -> GitResult<()> {
    if path.exists() {
        std::fs::remove_dir_all(path).map_err(|e| io_error("remove workspace", path, e))?;
    }
    Ok(())
}
