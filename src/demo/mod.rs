//! The built-in example behind `streams demo`: a throwaway repository holding a small web app,
//! a plan that splits its login feature into four streams, and a scripted agent.

use std::path::Path;

use crate::git::{Git, GitResult};

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
pub fn create(dir: &Path) -> GitResult<()> {
    let io = |e: std::io::Error| crate::git::GitError::Command {
        args: "demo".into(),
        dir: dir.to_path_buf(),
        stderr: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    for (path, text) in FILES
        .iter()
        .chain([&("streams.toml", PLAN), &("scripts/agent.sh", AGENT)])
    {
        let full = dir.join(path);
        std::fs::create_dir_all(full.parent().unwrap_or(dir)).map_err(io)?;
        std::fs::write(&full, text).map_err(io)?;
    }
    let git = Git::new(dir)
        // The demo must work on a machine where git has no identity configured.
        .with_env("GIT_AUTHOR_NAME", "streams demo")
        .with_env("GIT_AUTHOR_EMAIL", "demo@streams.invalid")
        .with_env("GIT_COMMITTER_NAME", "streams demo")
        .with_env("GIT_COMMITTER_EMAIL", "demo@streams.invalid");
    git.run(["init", "-q", "-b", "main"])?;
    git.run(["add", "-A"])?;
    git.run([
        "-c",
        "commit.gpgsign=false",
        "commit",
        "-q",
        "-m",
        "demo app: initial commit",
    ])?;
    Ok(())
}
