//! Sparse workspaces: a stream that declares `reads` gets only what it owns, the plan's `shared`
//! and what it reads checked out (git's sparse checkout), so a 100,000-file monorepo costs a
//! stream the few thousand files it needs. The ownership check is unchanged: it looks at what
//! the agent changed, and files outside the sparse set cannot be changed without being written.
//!
//! The set itself (its patterns, cone mode or not) is worked out from the plan's globs by
//! [`crate::plan::sparse`]; this module applies it to a workspace.

use std::path::Path;

use super::{Git, GitResult, Sparse};

/// Where streams records what it last asked `git sparse-checkout set` for, followed by the file
/// git wrote: when both still hold, the workspace is as asked without running git (an agent
/// that changed git's file gets it set again).
const RECORD: &str = "streams-sparse";
const SEPARATOR: &str = "--- git's sparse-checkout file:\n";

/// The `[core]` lines of a workspace's config for its sparse set: on, in the mode recorded,
/// when streams set one and git's file is there; off otherwise.
pub(super) fn config_lines(git_dir: &Path) -> String {
    let info = git_dir.join("info");
    let recorded = std::fs::read_to_string(info.join(RECORD)).ok();
    match recorded {
        Some(record) if info.join("sparse-checkout").is_file() => {
            let cone = record.lines().next() == Some("cone");
            format!("\tsparseCheckout = true\n\tsparseCheckoutCone = {cone}\n")
        }
        _ => "\tsparseCheckout = false\n".to_string(),
    }
}

/// Makes the workspace at `git`'s directory sparse with `sparse`, or whole with `None`; call it
/// before a checkout fills the workspace (then only the sparse set is written), or on a filled
/// one (git then removes or adds files). Runs nothing when the workspace is already so:
/// `git_dir` is the workspace's own git directory (where `info/sparse-checkout` lives).
/// Returns whether it ran git (which then changed the config: the caller writes its own again).
pub(super) fn apply(git: &Git, git_dir: &Path, sparse: Option<&Sparse>) -> GitResult<bool> {
    let info = git_dir.join("info");
    let (file, record) = (info.join("sparse-checkout"), info.join(RECORD));
    // Read to compare; what streams writes or removes here goes beneath the git dir.
    let current = std::fs::read_to_string(&file).ok();
    let recorded = std::fs::read_to_string(&record).ok();
    match sparse {
        None if current.is_none() && recorded.is_none() => Ok(false),
        None => {
            git.run(["sparse-checkout", "disable"])?;
            // `disable` leaves git's file; without both, the next call sees a whole workspace.
            if let Ok(ours) = crate::beneath::Dir::open(git_dir) {
                let _ = ours.remove("info/sparse-checkout");
                let _ = ours.remove(Path::new("info").join(RECORD));
            }
            Ok(true)
        }
        Some(sparse) => {
            let request = request(sparse);
            if let (Some(current), Some(recorded)) = (&current, &recorded)
                && *recorded == format!("{request}{SEPARATOR}{current}")
            {
                return Ok(false);
            }
            let mode = if sparse.cone { "--cone" } else { "--no-cone" };
            let input: String = sparse.lines.iter().map(|l| format!("{l}\n")).collect();
            git.run_with_stdin(
                ["sparse-checkout", "set", mode, "--stdin"],
                Some(input.as_bytes()),
            )?;
            let written = std::fs::read_to_string(&file).unwrap_or_default();
            // Only an optimisation: a record that cannot be written costs a `set` next time.
            let _ = crate::beneath::Dir::open(git_dir).and_then(|ours| {
                ours.write(
                    Path::new("info").join(RECORD),
                    format!("{request}{SEPARATOR}{written}").as_bytes(),
                )
            });
            Ok(true)
        }
    }
}

/// What is asked of git, as recorded beside git's own file.
fn request(sparse: &Sparse) -> String {
    let mode = if sparse.cone { "cone" } else { "no-cone" };
    let lines: String = sparse.lines.iter().map(|l| format!("{l}\n")).collect();
    format!("{mode}\n{lines}")
}
