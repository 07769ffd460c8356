//! Finding the repository and loading the plan: the first step of `plan`, `run` and `demo`.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::git::{self, Oid, Repo};
use crate::plan::Plan;

use super::Context;

/// A validated plan, pinned to the commit its `base` named when it was loaded.
pub struct LoadedPlan {
    pub plan: Plan,
    /// The plan file, absolute.
    pub path: PathBuf,
    pub base_commit: Oid,
}

/// Checks git, finds the repository around `ctx.cwd`.
pub fn open_repo(ctx: &Context) -> Result<Repo> {
    git::check_git_version()?;
    Ok(Repo::discover(&ctx.cwd)?)
}

/// The plan file named on the command line (relative to `-C`), or `streams.toml` at the root.
pub fn plan_path(ctx: &Context, repo: &Repo, arg: Option<&Path>) -> PathBuf {
    match arg {
        Some(path) => ctx.cwd.join(path),
        None => repo.root().join("streams.toml"),
    }
}

pub fn load_plan(ctx: &Context, repo: &Repo, arg: Option<&Path>) -> Result<LoadedPlan> {
    let path = plan_path(ctx, repo, arg);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::PlanUnreadable {
        path: path.clone(),
        source,
    })?;
    let plan = crate::plan::parse_simple(&text).map_err(|message| Error::InvalidPlan {
        rendered: format!("error: {message}"),
        errors: 1,
    })?;
    let base_commit = repo.resolve_commit(&plan.base)?;
    Ok(LoadedPlan {
        plan,
        path,
        base_commit,
    })
}

/// The plan a run started with (its copy in the run directory): what `resume`, `continue` and
/// `skip` go on with, even if `streams.toml` changed since.
pub fn plan_from_copy(run_dir: &crate::state::RunDir) -> Result<Plan> {
    let path = run_dir.plan_copy_path();
    let text = std::fs::read_to_string(&path).map_err(|source| Error::PlanUnreadable {
        path: path.clone(),
        source,
    })?;
    crate::plan::parse_simple(&text).map_err(|message| Error::InvalidPlan {
        rendered: format!("error: {message}"),
        errors: 1,
    })
}
