//! `streams status`: the current or last run, per stream. Reads only (no lock), so it works
//! from another terminal while a run is going.

use crate::error::{ExitCode, Result};
use crate::ops;
use crate::report::{print_data, print_json, status_view};

use super::{Context, StatusArgs};

pub fn status(ctx: &Context, args: StatusArgs) -> Result<ExitCode> {
    if args.watch {
        return super::watch::watch(ctx);
    }
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let status = ops::status::status(&repo)?;
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
