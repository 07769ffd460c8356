//! The repository a command works on: where it lives, and the reads every layer needs.
//!
//! `Repo` holds paths only and is cheap to clone and share between threads; each method that
//! needs libgit2 opens its own handle (libgit2 handles must not be shared across threads).

use std::path::{Path, PathBuf};

use super::{Git, GitError, GitResult, Oid};

#[derive(Clone, Debug)]
pub struct Repo {
    /// The user's working tree (None for a bare repository).
    workdir: Option<PathBuf>,
    /// The common git dir: shared by every worktree; where streams keeps its state.
    common_dir: PathBuf,
}

/// What a report or the coordinator needs to know of a commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    pub id: Oid,
    pub tree: Oid,
    pub parents: Vec<Oid>,
    pub author_name: String,
    pub author_email: String,
    /// Seconds since the epoch and offset in minutes, as git stores them.
    pub author_time: (i64, i32),
    pub message: String,
}

impl CommitInfo {
    pub fn subject(&self) -> &str {
        self.message.lines().next().unwrap_or("")
    }
}

impl Repo {
    /// Finds the repository containing `dir`, the way git does.
    pub fn discover(dir: &Path) -> GitResult<Repo> {
        let repo = git2::Repository::discover(dir).map_err(|err| match err.code() {
            git2::ErrorCode::NotFound => GitError::NotARepository {
                dir: dir.to_path_buf(),
            },
            _ => GitError::Unreadable {
                dir: dir.to_path_buf(),
                message: err.message().into(),
            },
        })?;
        let common_dir = absolute(repo.commondir());
        let workdir = repo.workdir().map(absolute);
        Ok(Repo {
            workdir,
            common_dir,
        })
    }

    /// Opens the repository by its common dir (used by code that only has a path from state).
    pub fn at_common_dir(common_dir: &Path, workdir: Option<PathBuf>) -> Repo {
        Repo {
            workdir,
            common_dir: common_dir.to_path_buf(),
        }
    }

    pub fn workdir(&self) -> Option<&Path> {
        self.workdir.as_deref()
    }

    /// The user's checkout, or the common dir for a bare repository.
    pub fn root(&self) -> &Path {
        self.workdir.as_deref().unwrap_or(&self.common_dir)
    }

    pub fn common_dir(&self) -> &Path {
        &self.common_dir
    }

    /// A `git` bound to the common dir: for operations that touch no working tree.
    pub(in crate::git) fn git(&self) -> Git {
        // `git -C <common dir>` works for bare and non-bare repositories alike and never
        // looks at (or locks) the user's index.
        Git::new(&self.common_dir)
    }

    /// A fresh libgit2 handle for this thread.
    pub(in crate::git) fn open(&self) -> GitResult<git2::Repository> {
        git2::Repository::open(&self.common_dir).map_err(|err| GitError::Unreadable {
            dir: self.common_dir.clone(),
            message: err.message().into(),
        })
    }

    /// Resolves a revision to a commit id.
    pub fn resolve_commit(&self, rev: &str) -> GitResult<Oid> {
        let repo = self.open()?;
        let object = repo
            .revparse_single(rev)
            .map_err(|_| GitError::BadRevision {
                rev: rev.to_string(),
            })?;
        let commit = object.peel_to_commit().map_err(|_| GitError::BadRevision {
            rev: rev.to_string(),
        })?;
        Ok(commit.id().into())
    }

    /// Every file tracked at `commit`, as paths relative to the repository root.
    pub fn tracked_files(&self, commit: &str) -> GitResult<Vec<String>> {
        let out = self
            .git()
            .run(["ls-tree", "-r", "-z", "--name-only", "--full-tree", commit])?;
        Ok(out.z_fields().collect())
    }

    /// The mode git records for `path` at `commit` (`100644`, `100755`, `120000`, ...), if it is
    /// tracked there.
    pub fn mode_at(&self, commit: &str, path: &str) -> GitResult<Option<String>> {
        let listing = self
            .git()
            .read(["ls-tree", "--full-tree", commit, "--", path])?;
        Ok(listing.split_whitespace().next().map(str::to_string))
    }

    /// The short name of the branch the checkout is on; `None` on a detached HEAD.
    pub fn current_branch(&self) -> Option<String> {
        self.git()
            .read(["symbolic-ref", "--short", "-q", "HEAD"])
            .ok()
            .map(|b| b.trim().to_string())
            .filter(|b| !b.is_empty())
    }

    /// The commit a ref points at, if the ref exists.
    pub fn ref_target(&self, name: &str) -> GitResult<Option<Oid>> {
        let repo = self.open()?;
        match repo.find_reference(name) {
            Ok(r) => Ok(r.resolve().ok().and_then(|r| r.target()).map(Oid::from)),
            Err(err) if err.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(err) => Err(GitError::library(format!("could not read ref {name}"), err)),
        }
    }

    /// Whether the object store holds `id`.
    pub fn has_object(&self, id: &str) -> bool {
        let Ok(oid) = git2::Oid::from_str(id) else {
            return false;
        };
        self.open()
            .ok()
            .and_then(|r| r.odb().ok().map(|odb| odb.exists(oid)))
            .unwrap_or(false)
    }

    /// A boolean setting as git reads it for this repository (its config, the user's, the
    /// system's), or `default`.
    pub fn config_bool(&self, key: &str, default: bool) -> bool {
        self.open()
            .ok()
            .and_then(|r| r.config().ok())
            .and_then(|c| c.get_bool(key).ok())
            .unwrap_or(default)
    }

    /// A path setting as git reads it (`~/` expanded), if set.
    pub fn config_path(&self, key: &str) -> Option<PathBuf> {
        let config = self.open().ok()?.config().ok()?;
        config.get_path(key).ok()
    }

    pub fn commit_info(&self, id: &str) -> GitResult<CommitInfo> {
        let repo = self.open()?;
        commit_info(&repo, id)
    }

    /// The contents of a blob; empty when it cannot be read.
    pub fn blob(&self, oid: &str) -> Vec<u8> {
        self.open()
            .ok()
            .and_then(|r| {
                let oid = git2::Oid::from_str(oid).ok()?;
                r.find_blob(oid).ok().map(|b| b.content().to_vec())
            })
            .unwrap_or_default()
    }

    /// The blob at `path` in `tree`, if there is one.
    pub fn blob_at(&self, tree: &str, path: &str) -> Option<Vec<u8>> {
        let r = self.open().ok()?;
        let tree = r.find_tree(git2::Oid::from_str(tree).ok()?).ok()?;
        let entry = tree.get_path(Path::new(path)).ok()?;
        r.find_blob(entry.id()).ok().map(|b| b.content().to_vec())
    }

    /// Creates a repository in `dir` with everything in it as the first commit on `main`, made
    /// with the environment `env` (an identity, say). For `streams demo`.
    pub fn init_with_first_commit(
        dir: &Path,
        message: &str,
        env: &[(&str, &str)],
    ) -> GitResult<()> {
        let mut git = Git::new(dir);
        for (k, v) in env {
            git = git.with_env(*k, *v);
        }
        git.run(["init", "-q", "-b", "main"])?;
        git.run(["add", "-A"])?;
        git.run(["-c", "commit.gpgsign=false", "commit", "-q", "-m", message])?;
        Ok(())
    }
}

pub(crate) fn commit_info(repo: &git2::Repository, id: &str) -> GitResult<CommitInfo> {
    let oid = git2::Oid::from_str(id).map_err(|_| GitError::BadRevision { rev: id.into() })?;
    let commit = repo
        .find_commit(oid)
        .map_err(|err| GitError::library(format!("could not read commit {id}"), err))?;
    let author = commit.author();
    Ok(CommitInfo {
        id: id.into(),
        tree: commit.tree_id().into(),
        parents: commit.parent_ids().map(Oid::from).collect(),
        author_name: String::from_utf8_lossy(author.name_bytes()).into_owned(),
        author_email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
        author_time: (author.when().seconds(), author.when().offset_minutes()),
        message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
    })
}

fn absolute(path: &Path) -> PathBuf {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // libgit2 reports directories with a trailing slash; strip it for tidy messages.
    PathBuf::from(path.to_string_lossy().trim_end_matches('/'))
}
