//! `streams merge`: take the last run's result into a branch of the user's.

use crate::error::{ExitCode, Result};
use crate::ops;

use super::{Context, MergeArgs};

pub fn merge(ctx: &Context, args: MergeArgs) -> Result<ExitCode> {
    // Under the plan's lock: no run moves the integration branch while it is merged.
    let selector = ctx.selector(&args.which)?;
    let current = ops::session::current(
        ops::load::open_repo(&ctx.cwd)?,
        &selector,
        ops::runs::Want::Unmerged,
        "merge",
    )?;
    ctx.say_choice("merge", current.choice.as_ref());
    let merged = ops::merge::merge(
        &current.repo,
        &current.run_dir,
        &current.state,
        args.into.as_deref(),
        args.allow_moved,
    )?;
    crate::report::session_view::merged(&ctx.ui, &merged);
    Ok(ExitCode::Success)
}
