//! `streams status`: a run (the last, or the one `--plan` / `--run` name), per stream; and
//! `streams runs`, every run recorded here. Both read only (no lock), so they work from
//! another terminal while a run is going.

use crate::error::{ExitCode, Result};
use crate::ops;
use crate::report::{print_data, print_json, runs_view, status_view};

use super::{Context, RunsArgs, StatusArgs};

pub fn status(ctx: &Context, args: StatusArgs) -> Result<ExitCode> {
    let selector = ctx.selector(&args.which)?;
    if args.watch {
        return super::watch::watch(ctx, selector);
    }
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let (status, choice) = ops::status::status(&repo, &selector)?;
    ctx.say_choice("status", choice.as_ref());
    if args.json {
        print_json(&status)?;
    } else {
        match &status.run {
            Some(run) => print_data(&status_view::render(run))?,
            None => ctx
                .ui
                .info("no streams run in this repository yet: start one with `streams run`"),
        }
    }
    Ok(ExitCode::Success)
}

/// `streams runs`: every run recorded here, oldest first.
pub fn runs(ctx: &Context, args: RunsArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let runs = ops::runs::list(&repo);
    for line in &runs.unreadable {
        ctx.ui.warn(line);
    }
    if args.json {
        print_json(&runs)?;
    } else if runs.runs.is_empty() {
        ctx.ui
            .info("no streams run in this repository yet: start one with `streams run`");
    } else {
        print_data(&runs_view::render(&runs))?;
    }
    Ok(ExitCode::Success)
}
