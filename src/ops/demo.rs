//! `streams demo`: the example repository a demo runs in (the repository itself is
//! [`crate::demo`]'s), in a directory of the person's or a new temporary one.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Where the demo goes: `dir` (relative to `cwd`), which must be empty or new, or a new
/// temporary directory, kept after the demo so the result can be looked at.
pub fn directory(cwd: &Path, dir: Option<&Path>) -> Result<PathBuf> {
    match dir {
        Some(dir) => {
            let dir = cwd.join(dir);
            if dir.exists()
                && std::fs::read_dir(&dir)
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(true)
            {
                return Err(Error::usage(format!(
                    "{} exists and is not empty; give an empty or new directory",
                    dir.display()
                )));
            }
            Ok(dir)
        }
        None => Ok(tempfile::Builder::new()
            .prefix("streams-demo-")
            .tempdir()
            .map_err(|e| Error::io("could not create a temporary directory", e))?
            .keep()),
    }
}

/// Creates the example repository in `dir` (git must be recent enough).
pub fn create(dir: &Path) -> Result<()> {
    crate::git::check_git_version()?;
    crate::demo::create(dir)
}

/// The directory the demo's workspaces go in, beside the repository in `dir` (the demo's plan
/// sets no `worktree_root`): removing the demo removes it too.
pub fn workspaces_dir(dir: &Path) -> PathBuf {
    let plan_dir = crate::layout::worktrees_dir(dir, &dir.join(".git"), "demo", None);
    plan_dir.parent().map(Path::to_path_buf).unwrap_or(plan_dir)
}
