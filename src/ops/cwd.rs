//! Where a command works, and the directories of a run the person may be standing in.
//!
//! A halted run tells the person to `cd` into its resolution workspace, and `continue`, `skip`
//! and `abort` remove it: the shell is then left in a directory that no longer exists, where
//! the process's current directory cannot even be read. A command started there works in the
//! repository that workspace belonged to (saying so), and otherwise says clearly what is wrong
//! instead of failing on an unreadable directory.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::git::Repo;
use crate::state::{RunState, StateDir};

/// The directory a command works in.
pub struct WorkingDir {
    pub dir: PathBuf,
    /// Set when the current directory no longer exists and was a workspace of a run of the
    /// repository at `dir`: the directory that is gone.
    pub gone: Option<PathBuf>,
}

/// The current directory; when it was removed from under this process, the checkout of the
/// repository it was a run's workspace of (an error saying so when it was anything else).
pub fn working_dir() -> Result<WorkingDir> {
    let err = match std::env::current_dir() {
        Ok(dir) => return Ok(WorkingDir { dir, gone: None }),
        Err(err) => err,
    };
    if err.kind() != std::io::ErrorKind::NotFound {
        return Err(Error::io("cannot read the current directory", err));
    }
    let hint = "`cd` to your repository (or give it with `-C DIR`) and run the command again";
    let Some(gone) = last_known_dir() else {
        return Err(Error::usage_with_hint(
            "the current directory no longer exists",
            hint,
        ));
    };
    match repository_of_workspace(&gone) {
        Some(dir) => Ok(WorkingDir {
            dir,
            gone: Some(gone),
        }),
        None => Err(Error::usage_with_hint(
            format!("the current directory {} no longer exists", gone.display()),
            hint,
        )),
    }
}

/// The path of the current directory that was removed: the kernel's name for it (Linux says
/// `/path (deleted)`), else the shell's (`$PWD`).
fn last_known_dir() -> Option<PathBuf> {
    let from_kernel = std::fs::read_link("/proc/self/cwd")
        .ok()
        .and_then(|link| link.to_str()?.strip_suffix(" (deleted)").map(PathBuf::from));
    from_kernel.or_else(|| {
        std::env::var_os("PWD")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    })
}

/// The checkout whose run `gone` was a workspace of: the one its default workspaces directory
/// sits beside (`<repo>.streams`), else the one found from the nearest directory above it that
/// still exists (a `worktree_root` inside it, or a run from before workspaces moved out of
/// `.git/`); and only when `gone` was the run's (under the repository's state directory, or in
/// the directory holding the current run's workspaces).
fn repository_of_workspace(gone: &Path) -> Option<PathBuf> {
    let beside = crate::layout::checkout_beside(gone).and_then(|dir| Repo::discover(&dir).ok());
    let repo = match beside {
        Some(repo) => repo,
        None => {
            let existing = gone.ancestors().skip(1).find(|dir| dir.is_dir())?;
            Repo::discover(existing).ok()?
        }
    };
    let state_dir = StateDir::new(repo.common_dir());
    let ours = gone.starts_with(crate::layout::state_dir(repo.common_dir()))
        || state_dir
            .current()
            .ok()
            .flatten()
            .is_some_and(|(_, state)| workspace_holding(&state, gone).is_some());
    ours.then(|| repo.root().to_path_buf())
}

/// The directory of `state`'s run (a stream's workspace, a resolution workspace, or the
/// directory the plan's workspaces are in) that `dir` is in, if any.
pub fn workspace_holding(state: &RunState, dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    // Each parked stream's resolution workspace (the stopped line's too).
    let resolution: Vec<PathBuf> = state
        .parked()
        .into_iter()
        .map(|(_, _, park)| park.resolution_worktree.clone())
        .collect();
    let workspaces = resolution.into_iter().chain(
        state
            .streams
            .iter()
            .flat_map(|s| {
                [
                    Some(s.worktree.clone()),
                    s.worktree.parent().map(Path::to_path_buf),
                ]
            })
            .flatten(),
    );
    workspaces
        .map(|w| w.canonicalize().unwrap_or(w))
        .find(|w| dir.starts_with(w))
}

/// After a command that started in `standing_in` (see [`workspace_holding`]): that directory
/// if the command removed it (the person's shell is left in it and needs to be told where to
/// go).
pub fn removed(standing_in: Option<PathBuf>) -> Option<PathBuf> {
    standing_in.filter(|dir| !dir.exists())
}
