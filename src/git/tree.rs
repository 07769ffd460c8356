//! Trees built and compared in process, in the user's repository: the tree of a task's work is
//! its start tree with the changed paths replaced (only the subtrees on their way rewritten), and
//! two trees are compared by walking down only the subtrees whose ids differ.
//!
//! Paths are bytes (`/`-separated, as git keeps them); callers that show or match them take
//! them as text.

use std::collections::BTreeMap;

use super::commit::parse_oid;
use super::{GitError, GitResult, Oid, Repo};

/// A path's new content in a tree: its mode and object, or `None` when it is gone.
pub type Content = Option<(u32, Oid)>;

/// A tree mode (`git ls-tree`'s `040000`).
pub const TREE_MODE: u32 = 0o040000;
/// A gitlink (a submodule's commit).
pub const GITLINK_MODE: u32 = 0o160000;

/// The tree `base` (`None`: the empty tree) with each of `changes` applied: the paths given
/// hold the content given (a file may replace a directory and the other way round); a
/// directory left empty goes. Written into the user's repository; returns its id.
pub fn build(repo: &Repo, base: Option<&str>, changes: &[(Vec<u8>, Content)]) -> GitResult<Oid> {
    let r = repo.open()?;
    let base = match base {
        Some(id) => Some(
            r.find_tree(parse_oid(id)?)
                .map_err(|e| GitError::library(format!("could not read tree {id}"), e))?,
        ),
        None => None,
    };
    let changes: Vec<(&[u8], &Content)> = changes.iter().map(|(p, c)| (&p[..], c)).collect();
    let built = apply(&r, base.as_ref(), &changes)?;
    match built {
        Some(id) => Ok(id.into()),
        None => {
            let empty = r
                .treebuilder(None)
                .and_then(|b| b.write())
                .map_err(|e| GitError::library("could not write the empty tree", e))?;
            Ok(empty.into())
        }
    }
}

/// A change below a name, relative to it.
type Below<'a> = (&'a [u8], &'a Content);

/// One level of [`build`]: `changes` are relative to `base`. `None`: the result is empty.
fn apply(
    r: &git2::Repository,
    base: Option<&git2::Tree<'_>>,
    changes: &[(&[u8], &Content)],
) -> GitResult<Option<git2::Oid>> {
    let fail = |e| GitError::library("could not build a tree", e);
    let mut builder = r.treebuilder(base).map_err(fail)?;
    // By first component: the change to the name itself, and those below it.
    let mut by_name: BTreeMap<&[u8], (Option<&Content>, Vec<Below>)> = BTreeMap::new();
    for &(path, content) in changes {
        match path.iter().position(|b| *b == b'/') {
            None => by_name.entry(path).or_default().0 = Some(content),
            Some(at) => by_name
                .entry(&path[..at])
                .or_default()
                .1
                .push((&path[at + 1..], content)),
        }
    }
    for (name, (own, below)) in by_name {
        let name_os = std::ffi::OsStr::from_bytes(name);
        let mut sub = None;
        if !below.is_empty() {
            let sub_base = match base.and_then(|t| t.get_name_bytes(name)) {
                Some(entry) if entry.kind() == Some(git2::ObjectType::Tree) => Some(
                    r.find_tree(entry.id())
                        .map_err(|e| GitError::library("could not read a tree", e))?,
                ),
                _ => None,
            };
            sub = apply(r, sub_base.as_ref(), &below)?;
        }
        match (own, sub) {
            (Some(Some((mode, id))), _) => {
                builder
                    .insert(name_os, parse_oid(id)?, *mode as i32)
                    .map_err(fail)?;
            }
            (_, Some(tree)) => {
                builder
                    .insert(name_os, tree, TREE_MODE as i32)
                    .map_err(fail)?;
            }
            (Some(None), None) | (None, None) => {
                if builder.get(name_os).map_err(fail)?.is_some() {
                    builder.remove(name_os).map_err(fail)?;
                }
            }
        }
    }
    if builder.is_empty() {
        return Ok(None);
    }
    builder.write().map(Some).map_err(fail)
}

use std::os::unix::ffi::OsStrExt;

/// One path that differs between two trees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delta {
    pub path: Vec<u8>,
    pub old: Content,
    pub new: Content,
}

impl Delta {
    pub fn path_text(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// The paths (files, links, gitlinks: not directories) whose content differs between the trees
/// `a` and `b` (`None`: the empty tree), in path order. Subtrees with the same id on both
/// sides are not read.
pub fn diff(repo: &Repo, a: Option<&str>, b: Option<&str>) -> GitResult<Vec<Delta>> {
    let r = repo.open()?;
    let find = |id: Option<&str>| -> GitResult<Option<git2::Tree<'_>>> {
        id.map(|id| {
            r.find_tree(parse_oid(id)?)
                .map_err(|e| GitError::library(format!("could not read tree {id}"), e))
        })
        .transpose()
    };
    let (a, b) = (find(a)?, find(b)?);
    let mut out = Vec::new();
    diff_level(&r, a.as_ref(), b.as_ref(), &mut Vec::new(), &mut out)?;
    out.sort_by(|x, y| x.path.cmp(&y.path));
    Ok(out)
}

type Side = Option<(u32, git2::Oid)>;

fn entries(tree: Option<&git2::Tree<'_>>) -> BTreeMap<Vec<u8>, (u32, git2::Oid)> {
    tree.map(|t| {
        t.iter()
            .map(|e| (e.name_bytes().to_vec(), (e.filemode() as u32, e.id())))
            .collect()
    })
    .unwrap_or_default()
}

fn diff_level(
    r: &git2::Repository,
    a: Option<&git2::Tree<'_>>,
    b: Option<&git2::Tree<'_>>,
    prefix: &mut Vec<u8>,
    out: &mut Vec<Delta>,
) -> GitResult<()> {
    let (ea, eb) = (entries(a), entries(b));
    let names: std::collections::BTreeSet<&Vec<u8>> = ea.keys().chain(eb.keys()).collect();
    for name in names {
        let (x, y): (Side, Side) = (ea.get(name).copied(), eb.get(name).copied());
        if x == y {
            continue;
        }
        let is_tree = |s: Side| s.is_some_and(|(m, _)| m == TREE_MODE);
        let len = prefix.len();
        prefix.extend_from_slice(name);
        let sub = |s: Side| -> GitResult<Option<git2::Tree<'_>>> {
            match s {
                Some((m, id)) if m == TREE_MODE => r
                    .find_tree(id)
                    .map(Some)
                    .map_err(|e| GitError::library(format!("could not read tree {id}"), e)),
                _ => Ok(None),
            }
        };
        if is_tree(x) || is_tree(y) {
            let (ta, tb) = (sub(x)?, sub(y)?);
            prefix.push(b'/');
            diff_level(r, ta.as_ref(), tb.as_ref(), prefix, out)?;
            prefix.pop();
        }
        let blob = |s: Side| {
            s.filter(|(m, _)| *m != TREE_MODE)
                .map(|(m, id)| (m, id.into()))
        };
        let (old, new) = (blob(x), blob(y));
        if old != new {
            out.push(Delta {
                path: prefix.clone(),
                old,
                new,
            });
        }
        prefix.truncate(len);
    }
    Ok(())
}

/// The entry at `path` in tree `tree`: its mode and id.
pub fn entry_at(repo: &Repo, tree: &str, path: &[u8]) -> GitResult<Content> {
    let r = repo.open()?;
    let tree = r
        .find_tree(parse_oid(tree)?)
        .map_err(|e| GitError::library(format!("could not read tree {tree}"), e))?;
    Ok(tree
        .get_path(std::path::Path::new(std::ffi::OsStr::from_bytes(path)))
        .ok()
        .map(|e| (e.filemode() as u32, e.id().into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> (tempfile::TempDir, Repo) {
        let dir = tempfile::tempdir().unwrap();
        git2::Repository::init_bare(dir.path()).unwrap();
        let repo = Repo::at_common_dir(dir.path(), None);
        (dir, repo)
    }

    fn blob(repo: &Repo, text: &str) -> Oid {
        repo.open().unwrap().blob(text.as_bytes()).unwrap().into()
    }

    fn listing(repo: &Repo, tree: &str) -> Vec<String> {
        diff(repo, None, Some(tree))
            .unwrap()
            .iter()
            .map(|d| d.path_text())
            .collect()
    }

    #[test]
    fn files_and_directories_replace_each_other_and_empty_directories_go() {
        let (_dir, repo) = repo();
        let x = blob(&repo, "x\n");
        let set = |p: &str| (p.as_bytes().to_vec(), Some((0o100644, x.clone())));
        let gone = |p: &str| (p.as_bytes().to_vec(), None);
        let base = build(&repo, None, &[set("a/f"), set("b"), set("c/d/e")]).unwrap();
        assert_eq!(listing(&repo, &base), ["a/f", "b", "c/d/e"]);
        // Directory `a` becomes a file, file `b` a directory, `c/d` is emptied.
        let next = build(
            &repo,
            Some(&base),
            &[gone("a/f"), set("a"), gone("b"), set("b/g"), gone("c/d/e")],
        )
        .unwrap();
        assert_eq!(listing(&repo, &next), ["a", "b/g"]);
        let deltas = diff(&repo, Some(&base), Some(&next)).unwrap();
        let paths: Vec<String> = deltas.iter().map(Delta::path_text).collect();
        assert_eq!(paths, ["a", "a/f", "b", "b/g", "c/d/e"]);
        assert!(diff(&repo, Some(&next), Some(&next)).unwrap().is_empty());
        assert_eq!(
            entry_at(&repo, &next, b"b/g").unwrap(),
            Some((0o100644, x.clone()))
        );
        // Everything removed: the empty tree.
        let empty = build(&repo, Some(&next), &[gone("a"), gone("b/g")]).unwrap();
        assert_eq!(empty, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    }

    #[test]
    fn a_dot_git_entry_is_refused() {
        let (_dir, repo) = repo();
        let x = blob(&repo, "x\n");
        assert!(
            build(
                &repo,
                None,
                &[(b"a/.git/config".to_vec(), Some((0o100644, x)))]
            )
            .is_err()
        );
    }
}
