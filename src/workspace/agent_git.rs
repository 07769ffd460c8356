//! The agent's `.git`, laid out by streams in process (no git runs with it): a repository on the
//! stream's branch at the task's start, borrowing the user's objects, with an index that
//! matches the files (a copy of streams' record) so the agent's own `git status` is quick.
//!
//! Laid out before every task and after its end, so that nothing an agent left there runs when
//! streams or a `check` later runs git in the workspace: hooks emptied, config streams' (the
//! user's repository's, included), `info/` the user's ignore and attribute rules (and the sparse
//! set), no `commondir` or `gitdir` that would send git elsewhere, no operation left half done,
//! no stale lock. The agent's own branches, tags, stash and objects stay: they are its.

use std::path::Path;

use super::{Workspace, io_error};
use crate::git::foreign::OPERATION_STATE;
use crate::git::{GitResult, Repo};

/// Lays out the agent's git directory of `ws` on `branch` (a full ref name) at `commit`.
pub(super) fn lay_out(repo: &Repo, ws: &Workspace, branch: &str, commit: &str) -> GitResult<()> {
    let dir = ws.git_dir();
    let fail =
        |p: &Path, e: std::io::Error| io_error("lay out the workspace's git directory", p, e);
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => std::fs::remove_file(&dir).map_err(|e| fail(&dir, e))?,
        Err(_) => {}
    }
    for sub in ["objects/info", "refs/heads", "refs/tags", "info", "hooks"] {
        let d = dir.join(sub);
        if !std::fs::symlink_metadata(&d).is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_file(&d);
            std::fs::create_dir_all(&d).map_err(|e| fail(&d, e))?;
        }
    }
    // What would run, or send git elsewhere.
    empty_dir(&dir.join("hooks")).map_err(|e| fail(&dir.join("hooks"), e))?;
    for name in [
        "commondir",
        "gitdir",
        "shallow",
        "objects/info/http-alternates",
    ] {
        remove_any(&dir.join(name)).map_err(|e| fail(&dir.join(name), e))?;
    }
    keep_autostash(&dir);
    for name in OPERATION_STATE {
        remove_any(&dir.join(name)).map_err(|e| fail(&dir.join(name), e))?;
    }
    for lock in crate::git::locks::in_git_dir(&dir) {
        let _ = std::fs::remove_file(lock);
    }
    // `info/`: the user's rules, and the sparse set.
    let info = dir.join("info");
    empty_dir(&info).map_err(|e| fail(&info, e))?;
    for name in ["exclude", "attributes"] {
        if let Ok(text) = std::fs::read(repo.common_dir().join("info").join(name)) {
            write(&info.join(name), &text)?;
        }
    }
    let sparse = ws.control().sparse_file();
    if let Ok(text) = std::fs::read(&sparse) {
        write(&info.join("sparse-checkout"), &text)?;
    }
    write(&dir.join("config"), config(repo, ws).as_bytes())?;
    write(
        &dir.join("objects/info/alternates"),
        format!("{}\n", repo.common_dir().join("objects").display()).as_bytes(),
    )?;
    // The branch, loose (it wins over a packed line of the same name), and HEAD on it.
    let branch_file = dir.join(branch);
    if let Some(parent) = branch_file.parent() {
        if !parent.is_dir() {
            let _ = std::fs::remove_file(parent);
        }
        std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
    }
    write(&branch_file, format!("{commit}\n").as_bytes())?;
    write(&dir.join("HEAD"), format!("ref: {branch}\n").as_bytes())?;
    // The agent's index: streams' record, which matches the files.
    let index = dir.join("index");
    let _ = std::fs::remove_file(&index);
    std::fs::copy(ws.control().index(), &index).map_err(|e| fail(&index, e))?;
    Ok(())
}

/// The agent's config: the user's repository's, then what makes the directory its own.
fn config(repo: &Repo, ws: &Workspace) -> String {
    let quote = |p: &Path| {
        p.to_string_lossy()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    format!(
        "# Written by streams before every task: this workspace's settings are its own.\n\
         [include]\n\tpath = \"{}\"\n\
         [core]\n\trepositoryformatversion = 0\n\tbare = false\n\tlogallrefupdates = true\n{}\
         [gc]\n\tauto = 0\n\
         [maintenance]\n\tauto = false\n",
        quote(&repo.common_dir().join("config")),
        ws.control().sparse_config(),
    )
}

/// Writes `contents` to `path`, replacing (never writing through) a link or anything else
/// there.
fn write(path: &Path, contents: &[u8]) -> GitResult<()> {
    remove_any(path).map_err(|e| io_error("write", path, e))?;
    std::fs::write(path, contents).map_err(|e| io_error("write", path, e))
}

fn remove_any(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    }
}

fn empty_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)?.flatten() {
        remove_any(&entry.path())?;
    }
    Ok(())
}

/// A rebase left half done may hold the agent's uncommitted changes in an autostash, named only
/// by its state directory: kept on a ref of the agent's before that directory goes.
fn keep_autostash(dir: &Path) {
    for state in ["rebase-merge", "rebase-apply"] {
        let Ok(text) = std::fs::read_to_string(dir.join(state).join("autostash")) else {
            continue;
        };
        let id = text.trim();
        if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let refs = dir.join("refs/streams-autostash");
            let _ = std::fs::create_dir_all(&refs);
            let _ = std::fs::write(refs.join(state), format!("{id}\n"));
        }
    }
}
