//! A stream's workspace: a directory where its agent works, and everything streams does there.
//!
//! **The trust boundary.** From the moment an agent starts, everything under its workspace is
//! the agent's, `.git` included: refs (replace refs too), index and its flags, config,
//! attributes, hooks, objects. So streams keeps what it needs to know about a workspace
//! outside it, in a control directory of its own under the user's git directory
//! (`git::control`): the record of the workspace's tracked files (the blob each path holds,
//! and the file's `lstat` when streams last wrote or read it), the commit the record describes,
//! and the sparse set. The workspace's `.git` is laid out for the agent (its branch at the
//! task's start, an index it can use, the user's objects borrowed) before each task, its hooks
//! emptied and its config streams' again; after the agent started, streams runs no git with it.
//!
//! **One reader** ([`read`]): once the agent's processes are gone, streams reads the work
//! tree's files against its record: a file whose inode, size and change time are as recorded,
//! changed before the record was taken, is unchanged (the kernel sets a file's change time on
//! every write, and no process can set it back: never the modification time, which anyone can
//! set, and never the workspace's file-system monitor, whose daemon the agent controls); any
//! other file is read, and hashed by streams into the user's object store. The commit's tree is
//! the record's tree with the changed paths replaced, built in process. Nested repositories,
//! gitlinks and symbolic links are judged from the file system; no git process of streams runs
//! inside a directory the agent made. Attributes and filters come from the user's repository
//! and the start commit. The ownership check, the commit, the ignored-files note and what is
//! kept of rejected work all use what this one pass read.
//!
//! **Kinds.** [`Workspace::find`] is the one place that looks at a path to tell what is there:
//! a workspace streams made (its control directory says so), an earlier version's private
//! repository or linked worktree (replaced, their work kept), nothing, or someone else's
//! directory (refused).
//!
//! - `prepare`: laying a workspace out, reusing it, moving it on to a new start, setting one
//!   that cannot be reset aside.
//! - `checkout`: a workspace's files moved from one commit to another in process, only the
//!   paths that differ (git's checkout through the control directory where it declines).
//! - `agent_git`: the agent's `.git`, laid out in process.
//! - `read`: the one reader.
//! - `result`: what a read becomes: the task's end commit, kept work, the agent's history
//!   checked object by object.

mod agent_git;
mod checkout;
mod prepare;
pub mod read;
mod result;

use std::path::{Path, PathBuf};

use crate::git::control::Control;
use crate::git::foreign;
use crate::git::{GitError, GitResult, Repo};
use crate::ids::Oid;

pub use prepare::{PrepareReport, Prepared, Spec, advance, prepare};
pub use read::{FsTime, Ignored, Read};
pub use result::{AgentHistory, Kept, NotHistory, TaskEnd};

/// What is at a workspace's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Nothing yet: no directory, or an empty one.
    Absent,
    /// A workspace streams made. `recorded`: its control directory holds the record of its
    /// files (an earlier version's private repository has none: it is read in full once).
    Private { recorded: bool },
    /// A linked worktree of the user's repository, as versions before private repositories
    /// made: replaced by a private workspace, its uncommitted work kept.
    Linked,
    /// A directory streams did not make: never touched.
    Foreign,
}

/// A stream's workspace.
#[derive(Clone, Debug)]
pub struct Workspace {
    path: PathBuf,
    control: Control,
    kind: Kind,
}

impl Workspace {
    /// What is at `path`, found once: the control directory first (streams' own word), then
    /// what the path holds.
    pub fn find(repo: &Repo, path: &Path) -> Workspace {
        let control = Control::new(
            crate::layout::workspace_control_dir(repo.common_dir(), path),
            path.to_path_buf(),
        );
        let kind = if control.at().is_some() {
            Kind::Private { recorded: true }
        } else if control.claims() {
            // Laid out by streams, but not to the end (a run killed meanwhile).
            Kind::Private { recorded: false }
        } else {
            match std::fs::symlink_metadata(path.join(".git")) {
                Ok(m) if m.is_dir() => Kind::Private { recorded: false },
                Ok(m) if m.is_file() && crate::git::worktree::is_linked(repo, path) => Kind::Linked,
                _ if std::fs::read_dir(path).map_or(true, |mut d| d.next().is_none()) => {
                    Kind::Absent
                }
                _ => Kind::Foreign,
            }
        };
        Workspace {
            path: path.to_path_buf(),
            control,
            kind,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The agent's git directory.
    pub fn git_dir(&self) -> PathBuf {
        self.path.join(".git")
    }

    pub(crate) fn control(&self) -> &Control {
        &self.control
    }

    /// The commit streams' record of the files describes, when there is a record.
    pub fn recorded_at(&self) -> Option<Oid> {
        self.control.at()
    }

    /// Removes the workspace and streams' record of it (forcefully: callers kept what mattered
    /// first). A linked worktree is unregistered from the user's repository too.
    pub fn remove(&self, repo: &Repo) -> GitResult<()> {
        match self.kind {
            Kind::Linked => crate::git::worktree::remove(repo, &self.path)?,
            Kind::Foreign => {}
            _ => {
                if self.path.exists() {
                    std::fs::remove_dir_all(&self.path)
                        .map_err(|e| io_error("remove workspace", &self.path, e))?;
                }
            }
        }
        self.control.remove()
    }

    /// Lock files a killed git left in the workspace's git directory or its control directory
    /// (streams' own: once the run is stopped, every one is stale).
    pub fn stale_locks(&self) -> Vec<PathBuf> {
        let mut found = crate::git::locks::in_git_dir(&self.git_dir());
        found.extend(crate::git::locks::in_git_dir(self.control.dir()));
        found
    }

    /// The commit the agent's `HEAD` names when the user's repository does not have it: work
    /// made in the workspace (by a person, after the run) that removing it would lose. Read as
    /// files; nothing of the workspace's git runs.
    pub fn unbrought_head(&self, repo: &Repo) -> Option<Oid> {
        if !matches!(self.kind, Kind::Private { .. }) {
            return None;
        }
        let head = foreign::head(&self.git_dir()).commit().cloned()?;
        (!repo.has_object(&head)).then_some(head)
    }

    /// The agent's own repository, to show its progress while its task runs (its commits are
    /// there until the task ends). What it says is the agent's: for display only.
    pub fn agent_repo(&self) -> Option<Repo> {
        matches!(self.kind, Kind::Private { .. })
            .then(|| Repo::at_common_dir(&self.git_dir(), Some(self.path.clone())))
            .filter(|_| self.git_dir().is_dir())
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> GitError {
    GitError::Command {
        args: what.to_string(),
        dir: path.to_path_buf(),
        stderr: e.to_string(),
    }
}

/// A failure that is the workspace's state, not git's: a file that cannot be read, a
/// directory that cannot be made.
fn damaged(path: &Path, what: &str) -> GitError {
    GitError::Library {
        context: format!("the workspace {} is damaged", path.display()),
        message: what.to_string(),
    }
}
