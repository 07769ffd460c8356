//! The only place that imports `git2` or runs the `git` program.
//!
//! `git2` does reads (resolving refs, rev walks, tree diffs, object lookups) and writes commit
//! objects; the `git` program does everything that writes a working tree or must behave exactly
//! like the user's git: worktrees, `merge-tree --write-tree`, ref transactions, status. Callers see
//! plain data (`Oid`s as hex strings, paths as `String`s), never git2 types, so `report/` and
//! `exec/` stay free of git.

mod cmd;
pub mod integrate;
mod repo;
pub mod work;
pub mod workspace;
pub mod worktree;

pub use cmd::{
    Git, GitOutput, MIN_GIT_VERSION, check_git_version, git_version, mark_run, redirecting_vars,
};
pub use repo::{CommitInfo, Repo};

use std::path::PathBuf;

/// A commit or tree id as 40 hex characters. Kept as a string: it crosses into state files,
/// events and messages far more often than into git2.
pub type Oid = String;

/// The git blob id of `text` (what `git hash-object` prints), computed in-process: a
/// fingerprint of a file streams wrote, to tell later whether it was changed.
pub fn text_hash(text: &str) -> String {
    git2::Oid::hash_object(git2::ObjectType::Blob, text.as_bytes())
        .map(|oid| oid.to_string())
        .unwrap_or_default()
}

/// The all-zero id `update-ref` uses to say "this ref must not exist yet".
pub const ZERO_OID: &str = "0000000000000000000000000000000000000000";

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("`git` was not found on PATH")]
    GitMissing,

    #[error("git {found} is too old: streams needs git {MIN_GIT_VERSION} or newer")]
    GitTooOld { found: String },

    #[error("{} is not inside a git repository", dir.display())]
    NotARepository { dir: PathBuf },

    #[error("git cannot read the repository at {}: {message}", dir.display())]
    Unreadable { dir: PathBuf, message: String },

    #[error("`{rev}` does not name a commit in this repository")]
    BadRevision { rev: String },

    #[error("`git {args}` failed in {}: {stderr}", dir.display())]
    Command {
        args: String,
        dir: PathBuf,
        stderr: String,
    },

    #[error("could not run `git {args}`: {source}")]
    Spawn {
        args: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{context}: {message}")]
    Library { context: String, message: String },
}

impl GitError {
    /// Problems with what the user pointed us at (exit 2), rather than with the environment.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            GitError::GitTooOld { .. }
                | GitError::NotARepository { .. }
                | GitError::Unreadable { .. }
                | GitError::BadRevision { .. }
        )
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            GitError::GitMissing => Some("install git 2.40 or newer".into()),
            GitError::GitTooOld { .. } => Some(
                "install a newer git and put it first on PATH (streams uses `git merge-tree --write-tree`)"
                    .into(),
            ),
            GitError::NotARepository { .. } => {
                Some("run streams inside a git repository, or point at one with `-C DIR`".into())
            }
            GitError::Command { stderr, .. } if stderr.contains("No space left") => {
                Some("the disk is full: free some space, then run `streams resume`".into())
            }
            _ => None,
        }
    }

    pub(crate) fn library(context: impl Into<String>, err: git2::Error) -> Self {
        GitError::Library {
            context: context.into(),
            message: err.message().to_string(),
        }
    }
}

pub type GitResult<T> = std::result::Result<T, GitError>;
