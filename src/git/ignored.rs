//! Files git ignores in the user's checkout (a `.gitignore` rule, `info/exclude`,
//! `core.excludesFile`): what `.worktreeinclude` and the plan's `include` may copy into a new
//! workspace (see `exec::include`). Those an agent wrote in its workspace are found by the
//! workspace's reader (`crate::workspace`).

use std::path::Path;

use super::{Git, GitResult};

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
