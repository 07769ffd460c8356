//! Files an agent wrote that a `.gitignore` rule (or `info/exclude`, or `core.excludesFile`)
//! matches. They are not part of its work and never reach its commit, which is right for build
//! output and caches; but an agent that wrote its real result there would otherwise finish with
//! "no changes" and nobody would know why. streams names them in the task's result.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{Git, GitResult};

/// Ignored paths an agent wrote: how many, and the first few in path order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoredFiles {
    pub count: usize,
    pub examples: Vec<String>,
}

/// A file's modification time comes from the kernel's coarse clock, which can lag the clock
/// `since` was read from; this much slack keeps a file written at once after `since` in.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// Ignored paths in `worktree` modified at or after `since` (a directory ignored as a whole, such
/// as `build/`, counts once, by its own time: it changes when entries are added to it).
/// `examples` holds at most `limit` of them.
pub fn ignored_written_since(
    worktree: &Path,
    since: SystemTime,
    limit: usize,
) -> GitResult<IgnoredFiles> {
    let git = Git::new(worktree);
    // `matching`: only paths an ignore rule matches (a directory as a whole when the rule names
    // it), not every file below an ignored directory.
    let out = git.run([
        "status",
        "--porcelain=v1",
        "-z",
        "--ignored=matching",
        "--untracked-files=all",
        "--no-renames",
    ])?;
    let since = since.checked_sub(CLOCK_SLACK).unwrap_or(since);
    let mut found = IgnoredFiles::default();
    for entry in out.stdout.split(|b| *b == 0) {
        let Some(path) = entry.strip_prefix(b"!! ") else {
            continue;
        };
        let path = String::from_utf8_lossy(path).into_owned();
        let written = std::fs::symlink_metadata(worktree.join(&path))
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified >= since);
        if written {
            found.count += 1;
            if found.examples.len() < limit {
                found.examples.push(path);
            }
        }
    }
    Ok(found)
}
