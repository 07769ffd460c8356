//! A git directory streams does not trust (an agent's, in its workspace), read without running
//! git in it and without opening it as a repository: no config, hooks, attributes, replace
//! refs or grafts of its own apply. Its `HEAD` and branch are read as files; its commits reach
//! the user's repository only object by object, each read from its store, hashed again from
//! its bytes and written under the id it hashes to ([`bring`]). A file that is not what git
//! would write (a FIFO, a link, something huge) is never opened as one.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::{GitError, GitResult, Oid, Repo};

/// Where the agent's `HEAD` points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// On a branch (a full ref name), at a commit if the branch exists.
    Branch { name: String, at: Option<Oid> },
    /// Detached at a commit.
    Detached(Oid),
    /// No `HEAD` git could read (the agent removed or garbled it).
    Unreadable,
}

impl Head {
    /// The commit `HEAD` names, if any.
    pub fn commit(&self) -> Option<&Oid> {
        match self {
            Head::Branch { at, .. } => at.as_ref(),
            Head::Detached(oid) => Some(oid),
            Head::Unreadable => None,
        }
    }
}

/// The most a small git file (`HEAD`, a loose ref) may hold.
const SMALL: u64 = 4096;

/// The contents of a regular file of at most `limit` bytes, never a FIFO, device or link.
fn read_small(path: &Path, limit: u64) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() || meta.len() > limit {
        return None;
    }
    std::fs::read(path).ok()
}

fn parse_id(text: &str) -> Option<Oid> {
    let text = text.trim();
    (text.len() == 40 && git2::Oid::from_str(text).is_ok()).then(|| Oid::from(text))
}

/// The agent's `HEAD` in `git_dir`, as git would read it (a symbolic ref to a branch, loose or
/// packed, or a detached id); anything else is [`Head::Unreadable`].
pub fn head(git_dir: &Path) -> Head {
    if !std::fs::symlink_metadata(git_dir).is_ok_and(|m| m.is_dir()) {
        return Head::Unreadable;
    }
    let Some(text) = read_small(&git_dir.join("HEAD"), SMALL) else {
        return Head::Unreadable;
    };
    let text = String::from_utf8_lossy(&text);
    if let Some(name) = text.strip_prefix("ref:") {
        let name = name.trim();
        if !name.starts_with("refs/") || name.contains("..") {
            return Head::Unreadable;
        }
        return Head::Branch {
            name: name.to_string(),
            at: ref_target(git_dir, name),
        };
    }
    parse_id(&text).map_or(Head::Unreadable, Head::Detached)
}

/// What ref `name` of the git dir points at: its loose file, else its line in `packed-refs`.
pub fn ref_target(git_dir: &Path, name: &str) -> Option<Oid> {
    if let Some(text) = read_small(&git_dir.join(name), SMALL) {
        return parse_id(&String::from_utf8_lossy(&text));
    }
    let packed = read_small(&git_dir.join("packed-refs"), 256 << 20)?;
    String::from_utf8_lossy(&packed).lines().find_map(|line| {
        let (id, rest) = line.split_once(' ')?;
        (rest == name).then(|| parse_id(id)).flatten()
    })
}

/// A git operation an agent can leave half done: the state file git keeps in its git dir, and
/// how to say it.
const OPERATIONS: [(&str, &str); 7] = [
    ("MERGE_HEAD", "a merge"),
    ("CHERRY_PICK_HEAD", "a cherry-pick"),
    ("REVERT_HEAD", "a revert"),
    ("rebase-apply/applying", "a patch application (git am)"),
    ("rebase-merge", "a rebase"),
    ("rebase-apply", "a rebase"),
    ("sequencer", "a cherry-pick or revert of several commits"),
];

/// The git operation the agent left half done in `git_dir`, from the state files git keeps.
pub fn operation_in_progress(git_dir: &Path) -> Option<&'static str> {
    OPERATIONS
        .iter()
        .find(|(state, _)| std::fs::symlink_metadata(git_dir.join(state)).is_ok())
        .map(|(_, what)| *what)
}

/// The state files and directories [`operation_in_progress`] looks for, and what `git commit`
/// leaves for the next one: what a workspace's git dir must not keep into the next task.
pub const OPERATION_STATE: [&str; 10] = [
    "MERGE_HEAD",
    "MERGE_MSG",
    "MERGE_MODE",
    "AUTO_MERGE",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
    "SQUASH_MSG",
    "rebase-apply",
    "rebase-merge",
    "sequencer",
];

/// Paths with a conflict in the agent's index (a merge left unresolved); none when it cannot
/// be read.
pub fn conflicted(git_dir: &Path) -> Vec<String> {
    let index = git_dir.join("index");
    match std::fs::symlink_metadata(&index) {
        Ok(m) if m.is_file() => super::index::conflicted(&index),
        _ => Vec::new(),
    }
}

/// Why an agent's commits could not be brought into the user's repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// An object they need is in neither store.
    Missing(Oid),
    /// An object does not hash to its name (overwritten, or damaged).
    Forged(Oid),
    /// More objects, or a bigger one, than any task makes.
    TooBig,
    /// The store could not be read at all.
    Unreadable(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Missing(id) => write!(f, "object {id} is missing"),
            Refused::Forged(id) => write!(
                f,
                "its object {id} does not hold what its name says (it was overwritten)"
            ),
            Refused::TooBig => write!(f, "its history is larger than any task makes"),
            Refused::Unreadable(why) => write!(f, "its objects cannot be read: {why}"),
        }
    }
}

/// The most objects [`bring`] copies for one task, and the largest one.
const MAX_OBJECTS: usize = 200_000;
const MAX_OBJECT: usize = 1 << 30;
/// The most bytes [`bring`] holds at once (everything it copies, until it is written).
const MAX_BYTES: usize = 4 << 30;

/// Puts the agent's object store in `git_dir` in a state libgit2 can read without being led
/// elsewhere or made to wait: its alternates point at the user's objects only, and entries
/// that are not regular files or directories (a FIFO named like an object, a link) are
/// removed.
pub fn prepare_objects(repo: &Repo, git_dir: &Path) -> GitResult<()> {
    let objects = git_dir.join("objects");
    if !std::fs::symlink_metadata(&objects).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let fail = |p: &Path, e: std::io::Error| GitError::Command {
        args: "read the workspace's objects".into(),
        dir: p.to_path_buf(),
        stderr: e.to_string(),
    };
    // Written beneath the git dir, through no link the agent put there.
    let info = objects.join("info");
    let ours = crate::beneath::Dir::open(git_dir).map_err(|e| fail(git_dir, e))?;
    if ours.kind("objects/info").map_err(|e| fail(&info, e))? != Some(crate::beneath::Kind::Dir) {
        ours.remove("objects/info")
            .and_then(|()| ours.create_dir_all("objects/info").map(drop))
            .map_err(|e| fail(&info, e))?;
    }
    for name in ["alternates", "http-alternates"] {
        let _ = ours.remove(Path::new("objects/info").join(name));
    }
    let alternates = format!("{}\n", repo.common_dir().join("objects").display());
    ours.write("objects/info/alternates", alternates.as_bytes())
        .map_err(|e| fail(&info.join("alternates"), e))?;
    let mut dirs = vec![objects.clone()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    // Loose object directories and `pack`, one level down; `info` holds files.
                    if dir == objects {
                        dirs.push(path);
                    }
                }
                Ok(t) if t.is_file() => {}
                _ => {
                    let _ = ours.relative(&path).and_then(|rel| ours.remove(rel));
                }
            }
        }
    }
    Ok(())
}

/// Copies every object reachable from `commit` that the user's repository lacks from the
/// agent's store in `git_dir` into it, each hashed again from its bytes, and written after what
/// it refers to. An object the user's repository has is taken with all it refers to (as a
/// fetch's connectivity check assumes). Nothing refers to what was copied yet. Call
/// [`prepare_objects`] first.
pub fn bring(repo: &Repo, git_dir: &Path, commit: &Oid) -> GitResult<Result<(), Refused>> {
    let user = repo.open()?;
    let user_odb = user
        .odb()
        .map_err(|e| GitError::library("could not open the object store", e))?;
    let objects: PathBuf = git_dir.join("objects");
    let theirs = match git2::Odb::new().and_then(|odb| {
        odb.add_disk_alternate(&objects.to_string_lossy())?;
        Ok(odb)
    }) {
        Ok(odb) => odb,
        Err(e) => return Ok(Err(Refused::Unreadable(e.message().to_string()))),
    };
    let Ok(start) = super::commit::parse_oid(commit) else {
        return Ok(Err(Refused::Missing(commit.clone())));
    };
    // Depth first, each object written only once everything it refers to is: a run killed
    // half way leaves no object in the user's repository without what it needs (which would
    // then be taken as complete).
    let mut stack = vec![(start, false)];
    let mut seen = HashSet::new();
    let mut held: std::collections::HashMap<git2::Oid, (git2::ObjectType, Vec<u8>)> =
        std::collections::HashMap::new();
    let mut bytes = 0usize;
    while let Some((id, expanded)) = stack.pop() {
        if expanded {
            if let Some((kind, data)) = held.remove(&id) {
                user_odb
                    .write(kind, &data)
                    .map_err(|e| GitError::library(format!("could not write object {id}"), e))?;
            }
            continue;
        }
        if user_odb.exists(id) || !seen.insert(id) {
            continue;
        }
        if seen.len() > MAX_OBJECTS {
            return Ok(Err(Refused::TooBig));
        }
        let (size, _) = match theirs.read_header(id) {
            Ok(header) => header,
            Err(_) => return Ok(Err(Refused::Missing(id.into()))),
        };
        bytes += size;
        if size > MAX_OBJECT || bytes > MAX_BYTES {
            return Ok(Err(Refused::TooBig));
        }
        let object = match theirs.read(id) {
            Ok(object) => object,
            Err(e) if e.message().contains("hash mismatch") => {
                return Ok(Err(Refused::Forged(id.into())));
            }
            Err(_) => return Ok(Err(Refused::Missing(id.into()))),
        };
        let (kind, data) = (object.kind(), object.data());
        if git2::Oid::hash_object(kind, data).ok() != Some(id) {
            return Ok(Err(Refused::Forged(id.into())));
        }
        let links = match kind {
            git2::ObjectType::Commit => commit_links(data),
            git2::ObjectType::Tree => tree_links(data),
            git2::ObjectType::Tag => tag_link(data),
            _ => Vec::new(),
        };
        held.insert(id, (kind, data.to_vec()));
        stack.push((id, true));
        stack.extend(
            links
                .into_iter()
                .filter(|l| !seen.contains(l))
                .map(|l| (l, false)),
        );
    }
    Ok(Ok(()))
}

/// The tree and parents a raw commit names.
fn commit_links(data: &[u8]) -> Vec<git2::Oid> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            l.strip_prefix("tree ")
                .or_else(|| l.strip_prefix("parent "))
                .and_then(|id| git2::Oid::from_str(id.trim()).ok())
        })
        .collect()
}

/// The object a raw tag names.
fn tag_link(data: &[u8]) -> Vec<git2::Oid> {
    let text = String::from_utf8_lossy(data);
    text.lines()
        .find_map(|l| l.strip_prefix("object "))
        .and_then(|id| git2::Oid::from_str(id.trim()).ok())
        .into_iter()
        .collect()
}

/// The trees and blobs a raw tree names (a gitlink's commit is another repository's).
fn tree_links(data: &[u8]) -> Vec<git2::Oid> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(space) = rest.iter().position(|b| *b == b' ') {
        let mode = &rest[..space];
        let Some(nul) = rest[space..].iter().position(|b| *b == 0) else {
            break;
        };
        let at = space + nul + 1;
        if rest.len() < at + 20 {
            break;
        }
        if mode != b"160000"
            && let Ok(id) = git2::Oid::from_bytes(&rest[at..at + 20])
        {
            out.push(id);
        }
        rest = &rest[at + 20..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_is_read_as_git_reads_it_and_anything_else_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let git_dir = dir.path();
        let id = "587be6b4c3f93f93c489c0111bba5596147a26cb";
        assert_eq!(head(git_dir), Head::Unreadable);
        std::fs::write(git_dir.join("HEAD"), "ref: refs/heads/streams/p/a\n").unwrap();
        assert_eq!(
            head(git_dir),
            Head::Branch {
                name: "refs/heads/streams/p/a".into(),
                at: None
            }
        );
        std::fs::write(
            git_dir.join("packed-refs"),
            format!("# pack-refs with: peeled\n{id} refs/heads/streams/p/a\n"),
        )
        .unwrap();
        assert_eq!(
            head(git_dir).commit().map(|o| o.to_string()),
            Some(id.into())
        );
        std::fs::write(git_dir.join("HEAD"), format!("{id}\n")).unwrap();
        assert_eq!(head(git_dir), Head::Detached(id.into()));
        std::fs::write(git_dir.join("HEAD"), "garbage").unwrap();
        assert_eq!(head(git_dir), Head::Unreadable);
        std::fs::remove_file(git_dir.join("HEAD")).unwrap();
        nix::unistd::mkfifo(&git_dir.join("HEAD"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(head(git_dir), Head::Unreadable, "a FIFO is never opened");
    }

    #[test]
    fn raw_objects_name_what_they_refer_to() {
        let tree = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
        let parent = "587be6b4c3f93f93c489c0111bba5596147a26cb";
        let commit = format!("tree {tree}\nparent {parent}\nauthor a <a> 1 +0000\n\nparent fake\n");
        let links: Vec<String> = commit_links(commit.as_bytes())
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(links, [tree, parent]);
        let mut raw_tree = b"100644 a.txt\0".to_vec();
        raw_tree.extend_from_slice(git2::Oid::from_str(parent).unwrap().as_bytes());
        raw_tree.extend_from_slice(b"160000 sub\0");
        raw_tree.extend_from_slice(git2::Oid::from_str(tree).unwrap().as_bytes());
        let links: Vec<String> = tree_links(&raw_tree)
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(links, [parent], "a gitlink's commit is not followed");
    }
}
