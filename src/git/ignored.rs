//! Files git ignores (a `.gitignore` rule, `info/exclude`, `core.excludesFile`), for two uses:
//!
//! - [`in_checkout`]: every ignored file of a checkout, what `.worktreeinclude` and the plan's
//!   `include` may copy into a new workspace (see `exec::include`);
//! - [`written_since`]: those an agent wrote. They are not part of its work and never reach its
//!   commit, which is right for build output and caches; but an agent that wrote its real
//!   result there would otherwise finish with "no changes" and nobody would know why. streams
//!   names them in the task's result.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Git, GitResult};
use crate::work::IgnoredFiles;

/// Every file under `root` that git ignores (`.gitignore`, `.git/info/exclude`, the user's
/// excludes file), relative to `root`, as git lists them (files, not directories).
pub fn in_checkout(root: &Path) -> GitResult<Vec<String>> {
    let out = Git::new(root).run([
        "ls-files",
        "-z",
        "--others",
        "--ignored",
        "--exclude-standard",
    ])?;
    Ok(out.z_fields().collect())
}

/// A file's modification time comes from the kernel's coarse clock, which can lag the clock
/// `since` was read from; this much slack keeps a file written at once after `since` in.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// Of the ignored paths in `worktree` (as `git status --ignored=matching` lists them), those
/// modified at or after `since` (a directory ignored as a whole, such as `build/`, counts once,
/// by its own time: it changes when entries are added to it). `examples` holds at most `limit`
/// of them. The list comes from the status that finds the agent's work: no walk of its own.
pub fn written_since(
    worktree: &Path,
    ignored: &[String],
    since: SystemTime,
    limit: usize,
) -> IgnoredFiles {
    let since = since.checked_sub(CLOCK_SLACK).unwrap_or(since);
    let mut found = IgnoredFiles::default();
    for path in ignored {
        let written = std::fs::symlink_metadata(worktree.join(path))
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified >= since);
        if written {
            found.count += 1;
            if found.examples.len() < limit {
                found.examples.push(path.clone());
            }
        }
    }
    found
}
