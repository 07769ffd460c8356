//! `streams retry`: run streams of a finished run again on top of its integration branch, with
//! the plan as it is now.

use crate::error::{ExitCode, Result};
use crate::ops;
use crate::report::session_view;

use super::session;
use super::{Context, RetryArgs};

pub fn retry(ctx: &Context, args: RetryArgs) -> Result<ExitCode> {
    let selector = ctx.selector(&args.which)?;
    let current = ops::session::current(
        ops::load::open_repo(&ctx.cwd)?,
        &selector,
        ops::runs::Want::Finished,
        "retry",
    )?;
    ctx.say_choice("retry", current.choice.as_ref());
    // `--plan FILE`: the plan is read from there rather than from where the run started.
    let file = args
        .which
        .plan
        .as_deref()
        .map(|p| ctx.cwd.join(p))
        .filter(|p| p.is_file());
    let (mut parts, _lock) = ops::session::engine_parts(current)?;
    let plan_file = file
        .clone()
        .unwrap_or_else(|| parts.state.plan_path.clone());
    let prepared = ops::retry::prepare(
        &mut parts,
        &args.streams,
        args.with_dependents,
        file.as_deref(),
        &args.budgets,
        args.max_cost,
    )?;
    match &prepared.plan_now {
        Some((path, changes, warnings)) => {
            super::load::show_warnings(ctx, warnings.as_deref());
            session_view::plan_changes(&ctx.ui, path, changes);
        }
        None => ctx.ui.warn(format!(
            "{} is gone: retrying with the plan as the run started",
            plan_file.display()
        )),
    }
    let reopened = &prepared.reopened;
    session_view::retrying(
        &ctx.ui,
        &parts.state,
        &reopened.streams,
        &reopened
            .kept
            .iter()
            .map(|(name, oid)| (name.clone(), oid.to_string()))
            .collect::<Vec<_>>(),
    );
    let ended = session::start(ctx, parts, "retry", args.json, None).run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}
