//! `streams plan`: validate a plan and show what a run would do.

use crate::error::{ExitCode, Result};

use super::{Context, PlanArgs, load};

pub fn plan(ctx: &Context, args: PlanArgs) -> Result<ExitCode> {
    let repo = load::open_repo(ctx)?;
    let loaded = load::load_plan(ctx, &repo, args.plan.as_deref())?;
    ctx.ui.info(format!(
        "plan `{}` is valid: {} streams",
        loaded.plan.name,
        loaded.plan.streams.len()
    ));
    Ok(ExitCode::Success)
}
