//! `streams ci github`: the workflow that spreads a plan over CI jobs (the work is in
//! [`crate::ci`], which is pure), and the file system around it: where the plan file is
//! relative to the repository, and writing the workflow whole.

use std::path::Path;

pub use crate::ci::Options;
use crate::error::{Error, Result};
use crate::git::Repo;

use super::load::LoadedPlan;

/// A workflow written for a plan.
pub struct Workflow {
    pub text: String,
    /// What the workflow cannot keep of the plan, one line each (for warnings).
    pub notes: Vec<String>,
    pub stages: usize,
    /// Matrix entries over every stage: one per stream.
    pub stream_jobs: usize,
}

/// The shell command that installs this version of streams on a runner (the default).
pub fn default_install() -> String {
    crate::ci::default_install()
}

/// The plan file as every job names it: relative to the repository root, `/`-separated; a
/// plan outside the repository keeps its `../` (the generator refuses it).
pub fn plan_path(repo: &Repo, loaded: &LoadedPlan) -> String {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (root, path) = (canonical(repo.root()), canonical(&loaded.path));
    match path.strip_prefix(&root) {
        Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
        Err(_) => format!("../{}", path.display()),
    }
}

/// The GitHub Actions workflow for `loaded`; a usage error listing every problem when the plan
/// cannot be spread over CI jobs.
pub fn github(loaded: &LoadedPlan, options: &Options) -> Result<Workflow> {
    let spread = crate::ci::spread(&loaded.plan, options).map_err(|refusal| {
        let problems: Vec<String> = refusal.problems.iter().map(|p| format!("  {p}")).collect();
        Error::usage_with_hint(
            format!(
                "the plan cannot be spread over CI jobs:\n{}",
                problems.join("\n")
            ),
            "change the plan (or the options) as said, then run `streams ci github` again; nothing was written",
        )
    })?;
    Ok(Workflow {
        text: crate::ci::github::workflow(&loaded.plan, options, &spread),
        notes: spread.notes.clone(),
        stages: spread.stages.len(),
        stream_jobs: spread.stages.iter().map(Vec::len).sum(),
    })
}

/// Writes the workflow to `path`, whole or not at all, with the mode any new file gets (others
/// read it: git, CI).
pub fn write(path: &Path, text: &str) -> Result<()> {
    crate::state::store::write_atomic(path, text.as_bytes())
        .map_err(|e| Error::io(format!("could not write {}", path.display()), e))
}
