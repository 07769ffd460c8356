//! The only place that imports `git2` or runs the `git` program.
//!
//! `git2` does reads (resolving refs, rev walks, tree diffs, object lookups) and writes commit
//! objects; the `git` program does everything that writes a working tree or must behave exactly
//! like the user's git: worktrees, `merge-tree --write-tree`, ref transactions, status. Callers see
//! plain data ([`Oid`]s, paths as `String`s), never git2 types or git argv: the runner (`cmd`)
//! is private to this module, so every git operation has a name here.
//!
//! - `repo`: the [`Repo`] handle and its reads (revisions, commits, blobs, files).
//! - `refs`: compare-and-swap ref moves, kept refs, listings, ancestry.
//! - `merge`: three-way merges without a working tree, single and batched.
//! - `commit`: identities and commit objects.
//! - `trailers`: the `Streams-*` trailers on commits.
//! - `changes`: the size of a stream's work, the paths its commits change.
//! - `ignored`: the files git ignores in a checkout (for `.worktreeinclude`).
//! - `conflict`: a conflicted merge laid out in a worktree for a person, and read back.
//! - `locks`: lock files a killed git left behind.
//! - `sparse`: sparse workspaces (a stream that declares `reads`).
//! - `control`: a workspace's control directory: streams' own git directory for it, outside
//!   it, through which its files are checked out and recorded.
//! - `index`: the record of a workspace's files (an index streams reads and writes itself).
//! - `tree`: trees built and compared in process.
//! - `hash`: files written as blobs, hashed from the bytes read (filters from the user's
//!   repository and the start commit only).
//! - `foreign`: an agent's git directory, read as files; its commits copied object by object,
//!   each hashed again.
//! - `worktree`: linked worktrees (the resolution and gate worktrees).
//! - `remote`: fetches, atomic pushes and manifests, for a run spread over machines.
//! - `review`: a stream's commits and diffstat, `git diff` through the user's pager, pushes.

pub mod changes;
mod cmd;
pub mod commit;
pub mod conflict;
pub mod control;
pub mod foreign;
pub mod hash;
pub mod ignored;
pub mod index;
pub mod locks;
pub mod merge;
pub mod refs;
pub mod remote;
mod repo;
pub mod review;
mod sparse;
pub mod trailers;
pub mod tree;
pub mod worktree;

use cmd::Git;
pub use cmd::{MIN_GIT_VERSION, check_git_version, git_version, mark_run, redirecting_vars};
pub use repo::{CommitInfo, Repo};
// The sparse set a workspace is laid out with (worked out from the plan's globs).
pub use crate::plan::Sparse;
// git's submodules name it `super::Oid`; everyone else imports `crate::ids::Oid`.
use crate::ids::Oid;

use std::path::PathBuf;

// git2's ids become plain ones at the door: only git sees git2.
impl From<git2::Oid> for Oid {
    fn from(oid: git2::Oid) -> Oid {
        Oid::from(oid.to_string())
    }
}

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

    /// A ref is not where a compare-and-swap move expects it (someone else moved it). Worded
    /// like the failed `update-ref` it stands for.
    #[error("`git update-ref {name}` failed in {}: {message}", dir.display())]
    RefMoved {
        name: String,
        dir: PathBuf,
        message: String,
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
