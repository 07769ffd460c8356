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
use crate::beneath::{self, Kind};
use crate::git::foreign::OPERATION_STATE;
use crate::git::{GitResult, Repo};

/// Lays out the agent's git directory of `ws` on `branch` (a full ref name) at `commit`.
///
/// Every write and removal goes through [`crate::beneath`], beneath the workspace: a `.git`, a
/// `refs`, an `info` the agent made a link (to a place outside) is replaced, never written
/// through, and a file there is replaced, never written into.
pub(super) fn lay_out(repo: &Repo, ws: &Workspace, branch: &str, commit: &str) -> GitResult<()> {
    let dir = ws.git_dir();
    let fail =
        |p: &Path, e: std::io::Error| io_error("lay out the workspace's git directory", p, e);
    let root = beneath::Dir::open(ws.path()).map_err(|e| fail(ws.path(), e))?;
    make_dir(&root, ".git").map_err(|e| fail(&dir, e))?;
    let git = root.open_dir(".git").map_err(|e| fail(&dir, e))?;
    for sub in ["objects/info", "refs/heads", "refs/tags", "info", "hooks"] {
        make_dir(&git, sub).map_err(|e| fail(&dir.join(sub), e))?;
    }
    // What would run, or send git elsewhere.
    empty_dir(&git, "hooks").map_err(|e| fail(&dir.join("hooks"), e))?;
    for name in [
        "commondir",
        "gitdir",
        "shallow",
        "objects/info/http-alternates",
    ] {
        git.remove(name).map_err(|e| fail(&dir.join(name), e))?;
    }
    keep_autostash(&git);
    for name in OPERATION_STATE {
        git.remove(name).map_err(|e| fail(&dir.join(name), e))?;
    }
    for lock in crate::git::locks::in_git_dir(&dir) {
        let _ = git.relative(&lock).and_then(|rel| git.remove(rel));
    }
    // `info/`: the user's rules, and the sparse set.
    empty_dir(&git, "info").map_err(|e| fail(&dir.join("info"), e))?;
    for name in ["exclude", "attributes"] {
        if let Ok(text) = std::fs::read(repo.common_dir().join("info").join(name)) {
            write(&git, &format!("info/{name}"), &text)?;
        }
    }
    let sparse = ws.control().sparse_file();
    if let Ok(text) = std::fs::read(&sparse) {
        write(&git, "info/sparse-checkout", &text)?;
    }
    write(&git, "config", config(repo, ws).as_bytes())?;
    write(
        &git,
        "objects/info/alternates",
        format!("{}\n", repo.common_dir().join("objects").display()).as_bytes(),
    )?;
    // The branch, loose (it wins over a packed line of the same name), and HEAD on it.
    if let Some(parent) = Path::new(branch).parent() {
        make_dir(&git, parent).map_err(|e| fail(&dir.join(parent), e))?;
    }
    write(&git, branch, format!("{commit}\n").as_bytes())?;
    write(&git, "HEAD", format!("ref: {branch}\n").as_bytes())?;
    // The agent's index: streams' record, which matches the files.
    let index = dir.join("index");
    git.remove("index")
        .and_then(|()| git.copy_in(&ws.control().index(), "index"))
        .map_err(|e| fail(&index, e))?;
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

/// Makes `rel` (beneath `git`) a file holding `contents`, replacing (never writing through) a
/// link or anything else there.
fn write(git: &beneath::Dir, rel: &str, contents: &[u8]) -> GitResult<()> {
    let path = git.path().join(rel);
    let written = (|| {
        if git.kind(rel)? == Some(Kind::Dir) {
            git.remove(rel)?;
        }
        git.write(rel, contents)
    })();
    written.map_err(|e| io_error("write", &path, e))
}

/// Makes `rel` (beneath `git`) a directory, and every directory on the way: what is in their
/// place (a file, a link) is removed.
fn make_dir(git: &beneath::Dir, rel: impl AsRef<Path>) -> std::io::Result<()> {
    let mut on_the_way = std::path::PathBuf::new();
    for name in rel.as_ref().components() {
        on_the_way.push(name);
        match git.kind(&on_the_way)? {
            Some(Kind::Dir) => {}
            Some(_) => {
                git.remove(&on_the_way)?;
                git.create_dir_all(&on_the_way)?;
            }
            None => {
                git.create_dir_all(&on_the_way)?;
            }
        }
    }
    Ok(())
}

/// Removes everything in the directory `rel` beneath `git`.
fn empty_dir(git: &beneath::Dir, rel: &str) -> std::io::Result<()> {
    for name in git.names(rel)? {
        git.remove(Path::new(rel).join(name))?;
    }
    Ok(())
}

/// A rebase left half done may hold the agent's uncommitted changes in an autostash, named only
/// by its state directory: kept on a ref of the agent's before that directory goes.
fn keep_autostash(git: &beneath::Dir) {
    for state in ["rebase-merge", "rebase-apply"] {
        // Read as a file of the directory, not through a link.
        let Ok(text) = git.read(Path::new(state).join("autostash")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        let id = text.trim();
        if id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            let rel = Path::new("refs/streams-autostash").join(state);
            let _ = make_dir(git, "refs/streams-autostash")
                .and_then(|()| git.write(&rel, format!("{id}\n").as_bytes()));
        }
    }
}
