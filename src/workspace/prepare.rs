//! Laying a workspace out for a task: made afresh, reused (what is found there kept first),
//! moved on from where it was prepared ahead, or (when it cannot be reset) set aside and made
//! afresh, so that a stream can always run again.
//!
//! Reusing costs one read of the files against streams' record (the one pass), then a checkout
//! through streams' control directory of only the files that differ between the commit the
//! record describes and the new start; found work is kept on a ref first and what the agent
//! changed is written again. The agent's `.git` is laid out last, and the record's boundary
//! taken after it.

use std::path::{Path, PathBuf};

use super::read::{self, Options, Record};
use super::{Kind, Workspace, agent_git, checkout, io_error, result};
use crate::git::{GitError, GitResult, Repo, Sparse};
use crate::ids::Oid;

/// What [`prepare`] is asked for.
pub struct Spec<'a> {
    pub path: &'a Path,
    /// Full ref name: `refs/heads/streams/<plan>/<stream>`; the workspace's only branch, and
    /// the user's branch of the same name that streams moves.
    pub branch: &'a str,
    pub commit: &'a str,
    /// Where to keep (in the user's repository) work found in the workspace.
    pub wip_ref: &'a str,
    /// Only these paths checked out (a stream that declares `reads`); `None`: every file.
    pub sparse: Option<&'a Sparse>,
    /// Prepared ahead of its task: the user's branch is left where it is, and moves when the
    /// task starts ([`advance`], or this preparation again should that fail), once a task.
    pub ahead: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Prepared {
    /// Laid out now.
    Created,
    /// An existing workspace, reset to the commit.
    Reused,
    /// Already at the commit, its files as recorded: nothing to write.
    Ready,
}

#[derive(Debug)]
pub struct PrepareReport {
    pub how: Prepared,
    /// Work found there: the ref (`wip_ref` or a free variant of it) and commit.
    pub saved: Option<(String, Oid)>,
    /// A workspace that could not be used as it was (an earlier version's, or one that could
    /// not be reset) was replaced.
    pub repaired: bool,
    /// Where a workspace that could not be reset or removed was set aside, if it is still
    /// there (its work could not all be kept, or it could not be removed).
    pub set_aside: Option<PathBuf>,
}

/// Makes `spec.path` a workspace at `spec.commit` on `spec.branch`, reusing what is there when
/// it can, and points the user's branch of that name at the commit (not when prepared ahead:
/// see [`Spec::ahead`]). Work found there is kept on `spec.wip_ref` in the user's repository
/// first.
pub fn prepare(repo: &Repo, spec: &Spec) -> GitResult<(Workspace, PrepareReport)> {
    let mut ws = Workspace::find(repo, spec.path);
    let mut report = PrepareReport {
        how: Prepared::Created,
        saved: None,
        repaired: false,
        set_aside: None,
    };
    if !spec.ahead {
        set_user_branch(repo, spec)?;
    }
    match ws.kind {
        Kind::Foreign => {
            return Err(GitError::Command {
                args: "workspace".into(),
                dir: spec.path.to_path_buf(),
                stderr: "the directory exists and is not a streams workspace; move it away".into(),
            });
        }
        Kind::Linked => {
            // An earlier version's linked worktree: keep what it holds, then replace it.
            let message = format!("uncommitted work found in {}", spec.path.display());
            report.saved =
                crate::git::worktree::save_dirty(repo, spec.path, spec.wip_ref, &message)
                    .ok()
                    .flatten();
            ws.remove(repo)?;
            report.repaired = true;
        }
        Kind::Private { recorded: true } => {
            let mut kept = false;
            match reuse(repo, &ws, spec, &mut report, &mut kept) {
                Ok(()) => return finish(repo, ws, spec, report),
                Err(e) => {
                    tracing::debug!(
                        "{}: could not reset the workspace: {e}",
                        spec.path.display()
                    );
                    set_aside(&ws, &mut report, kept)?;
                }
            }
        }
        Kind::Private { recorded: false } => {
            // No record (an earlier version's workspace): every file read against the start,
            // what differs kept, then laid out afresh over them.
            adopt_unrecorded(repo, &ws, spec, &mut report)?;
            return finish(repo, ws, spec, report);
        }
        Kind::Absent => {}
    }
    ws = create(repo, spec)?;
    finish(repo, ws, spec, report)
}

/// The agent's `.git` laid out at the start, then the record's boundary.
fn finish(
    repo: &Repo,
    mut ws: Workspace,
    spec: &Spec,
    report: PrepareReport,
) -> GitResult<(Workspace, PrepareReport)> {
    agent_git::lay_out(repo, &ws, spec.branch, spec.commit)?;
    read::mark_boundary(&ws)?;
    ws.kind = Kind::Private { recorded: true };
    crate::failpoint::hit("worktree-registered");
    Ok((ws, report))
}

/// Moves a workspace prepared ahead at `from` (at its start then, nothing run in it since) on
/// to `spec.commit`: only the files that differ between the two commits written, and git
/// refuses rather than overwrite a file changed since (the caller then prepares it in full,
/// which keeps what it finds).
pub fn advance(repo: &Repo, spec: &Spec, from: &str) -> GitResult<Workspace> {
    let ws = Workspace::find(repo, spec.path);
    if ws.control.at().as_deref() != Some(from) {
        return Err(super::damaged(spec.path, "not where it was prepared"));
    }
    set_user_branch(repo, spec)?;
    if from != spec.commit {
        let record =
            Record::of(repo, &ws)?.ok_or_else(|| super::damaged(spec.path, "no record"))?;
        let to_tree = repo.commit_info(spec.commit)?.tree;
        if checkout::move_to(repo, &ws, &record, &[], spec.commit, &to_tree)?.is_none() {
            read::forget_boundary(&ws);
            ws.control.checkout(repo, Some(from), spec.commit)?;
        }
    }
    agent_git::lay_out(repo, &ws, spec.branch, spec.commit)?;
    read::mark_boundary(&ws)?;
    Ok(ws)
}

/// The user's branch follows the workspace's: at the task's start until streams brings the
/// task's result. Whatever it held is the caller's to have kept (as with `checkout -B`).
fn set_user_branch(repo: &Repo, spec: &Spec) -> GitResult<()> {
    if repo.ref_target(spec.branch)?.as_deref() != Some(spec.commit) {
        crate::git::refs::set_refs(
            repo,
            &[(spec.branch.to_string(), Oid::from(spec.commit))],
            "streams: stream branch at the task's start",
        )?;
    }
    Ok(())
}

/// A workspace with a record: read against it, found work kept (`kept` says when nothing of it
/// can be lost any more), then moved to the commit and to the sparse set asked for.
fn reuse(
    repo: &Repo,
    ws: &Workspace,
    spec: &Spec,
    report: &mut PrepareReport,
    kept: &mut bool,
) -> GitResult<()> {
    let record = Record::of(repo, ws)?.ok_or_else(|| super::damaged(spec.path, "no record"))?;
    let found = read::read(repo, ws, &record, &Options::default())?;
    if !found.is_clean() {
        let message = format!("uncommitted work found in {}", spec.path.display());
        report.saved = result::keep(repo, &found, &record.at, spec.wip_ref, &message)?;
    }
    *kept = true;
    report.how = Prepared::Reused;
    if found.is_clean() {
        let moved = if record.at == spec.commit {
            report.how = Prepared::Ready;
            None
        } else {
            // In process: only the files that differ, and the record with them.
            let to_tree = repo.commit_info(spec.commit)?.tree;
            checkout::move_to(repo, ws, &record, &found.updates(), spec.commit, &to_tree)?
        };
        if moved.is_none() {
            read::update_record(ws, &found, None)?;
        }
        if moved.is_none() && record.at != spec.commit {
            read::forget_boundary(ws);
            if ws
                .control
                .checkout(repo, Some(&record.at), spec.commit)
                .is_err()
            {
                // Refused (an ignored file where the new commit has a tracked one, say):
                // every tracked file made as the commit has it.
                ws.control.checkout(repo, None, spec.commit)?;
            }
        }
    } else {
        restore(repo, ws, &found, spec.commit)?;
    }
    if ws.control.sparse(repo, spec.sparse)? {
        report.how = Prepared::Reused;
    }
    Ok(())
}

/// Puts the workspace's files back as commit `to` has them after a read found `found`: what it
/// added removed (ignored files stay), what it changed written again.
pub(super) fn restore(repo: &Repo, ws: &Workspace, found: &read::Read, to: &str) -> GitResult<()> {
    read::forget_boundary(ws);
    let root = ws.path();
    // Every removal beneath the workspace, through no link its agent put there.
    let beneath =
        crate::beneath::Dir::open(root).map_err(|e| io_error("reset the workspace", root, e))?;
    for nested in &found.nested {
        remove_any(&beneath, &root.join(nested).join(".git"))?;
    }
    let mut dirs = Vec::new();
    for change in found.untracked() {
        let path = root.join(std::ffi::OsStr::from_bytes(&change.path));
        remove_any(&beneath, &path)?;
        if let Some(parent) = path.parent() {
            dirs.push(parent.to_path_buf());
        }
    }
    for hidden in found.hidden_attributes() {
        remove_any(&beneath, hidden)?;
    }
    // The changed tracked paths leave the record, so the checkout writes them whatever their
    // `lstat` says.
    let gone: Vec<crate::git::index::Update> = found
        .changes
        .iter()
        .filter(|c| c.old.is_some())
        .map(|c| crate::git::index::Update {
            path: c.path.clone(),
            now: None,
        })
        .collect();
    crate::git::index::update(&ws.control.index(), &gone)?;
    ws.control.checkout(repo, None, to)?;
    // Directories the removals left empty.
    dirs.sort();
    dirs.dedup();
    for dir in dirs.into_iter().rev() {
        let mut dir = dir.as_path();
        while let Ok(rel) = beneath.relative(dir)
            && !rel.as_os_str().is_empty()
            && beneath.remove_empty_dir(rel).unwrap_or(false)
        {
            match dir.parent() {
                Some(parent) => dir = parent,
                None => break,
            }
        }
    }
    Ok(())
}

use std::os::unix::ffi::OsStrExt;

/// Removes what is at `path` in the workspace `beneath` (a link itself, never what it points
/// at). Beneath a link on the way there is nothing of the workspace's to remove.
fn remove_any(beneath: &crate::beneath::Dir, path: &Path) -> GitResult<()> {
    let done = beneath.relative(path).and_then(|rel| beneath.remove(rel));
    match done {
        Err(e) if crate::beneath::is_through_link(&e) => Ok(()),
        done => done.map_err(|e| io_error("reset the workspace", path, e)),
    }
}

/// A workspace without a record: every file read against `spec.commit` and what differs kept,
/// then a record made and every tracked file written as the commit has it.
fn adopt_unrecorded(
    repo: &Repo,
    ws: &Workspace,
    spec: &Spec,
    report: &mut PrepareReport,
) -> GitResult<()> {
    let start = Oid::from(spec.commit);
    let record = Record::of_commit(repo, &start)?;
    let found = read::read(repo, ws, &record, &Options::default())?;
    if !found.is_clean() {
        let message = format!("uncommitted work found in {}", spec.path.display());
        report.saved = result::keep(repo, &found, &start, spec.wip_ref, &message)?;
    }
    report.how = Prepared::Reused;
    report.repaired = true;
    ws.control.init(repo)?;
    ws.control.sparse(repo, spec.sparse)?;
    restore(repo, ws, &found, spec.commit)
}

/// Lays out a new workspace at `spec.path` (absent, or an empty directory).
fn create(repo: &Repo, spec: &Spec) -> GitResult<Workspace> {
    std::fs::create_dir_all(spec.path).map_err(|e| io_error("create workspace", spec.path, e))?;
    let ws = Workspace::find(repo, spec.path);
    ws.control.init(repo)?;
    // Sparse before the checkout, so that only the sparse set is written.
    ws.control.sparse(repo, spec.sparse)?;
    ws.control.checkout(repo, None, spec.commit)?;
    Ok(ws)
}

/// A workspace that cannot be reset is moved out of the way, and the caller lays out a new one.
/// It is removed when its work was kept (`kept`); otherwise (its files could not be read) it
/// stays where it was moved, for a person.
fn set_aside(ws: &Workspace, report: &mut PrepareReport, kept: bool) -> GitResult<()> {
    let path = ws.path();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = path.parent().unwrap_or(path);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // A dot first: no stream's name starts with one.
    let mut aside = parent.join(format!(".{name}.set-aside-{secs}"));
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = parent.join(format!(".{name}.set-aside-{secs}-{n}"));
    }
    std::fs::rename(path, &aside).map_err(|e| io_error("set the workspace aside", path, e))?;
    ws.control.remove()?;
    report.repaired = true;
    if !(kept && std::fs::remove_dir_all(&aside).is_ok()) {
        report.set_aside = Some(aside);
    }
    Ok(())
}
