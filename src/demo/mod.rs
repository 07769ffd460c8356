//! The built-in example behind `streams demo`: a throwaway repository holding a small web app,
//! a plan that splits its login feature into four streams, and a scripted agent.

use std::path::Path;

use crate::error::{IoContext, Result};
use crate::git::Repo;

/// The plan the demo runs.
pub const PLAN: &str = include_str!("streams.toml");
/// The scripted agent every demo task runs.
pub const AGENT: &str = include_str!("agent.sh");

const FILES: &[(&str, &str)] = &[
    (
        "README.md",
        "# demo app\n\nA tiny web app that `streams demo` splits across agents.\n",
    ),
    ("src/db/README.md", "Database schema.\n"),
    ("src/api/README.md", "HTTP endpoints.\n"),
    ("src/ui/README.md", "Pages.\n"),
    ("docs/README.md", "Documentation.\n"),
];

/// Creates the demo repository in `dir` (which must be empty or absent), with one commit on
/// `main`.
pub fn create(dir: &Path) -> Result<()> {
    // Worded as it always was, though no git command is involved.
    let context = || format!("`git demo` failed in {}", dir.display());
    std::fs::create_dir_all(dir).context(context)?;
    for (path, text) in FILES
        .iter()
        .chain([&("streams.toml", PLAN), &("scripts/agent.sh", AGENT)])
    {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap_or(dir)).context(context)?;
        std::fs::write(&full, text).context(context)?;
    }
    Repo::init_with_first_commit(
        dir,
        "demo app: initial commit",
        // The demo must work on a machine where git has no identity configured.
        &[
            ("GIT_AUTHOR_NAME", "streams demo"),
            ("GIT_AUTHOR_EMAIL", "demo@streams.invalid"),
            ("GIT_COMMITTER_NAME", "streams demo"),
            ("GIT_COMMITTER_EMAIL", "demo@streams.invalid"),
        ],
    )?;
    Ok(())
}
