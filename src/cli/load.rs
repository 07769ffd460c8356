//! The command line's side of loading a plan (the work is in [`crate::ops::load`]): the plan
//! file a command names, and its warnings shown as soon as it is checked.

use std::path::Path;

use crate::ops::load::PlanFile;

use super::Context;

/// The plan file named on the command line (`None`: `streams.toml` at the root), relative to
/// `-C`, its diagnostics coloured as stderr is.
pub fn plan_file<'a>(ctx: &'a Context, arg: Option<&'a Path>) -> PlanFile<'a> {
    PlanFile {
        cwd: &ctx.cwd,
        arg,
        color: ctx.ui.color,
    }
}

/// Shows a plan's warnings (rendered when it was checked), before anything else is said of it.
pub fn show_warnings(ctx: &Context, warnings: Option<&str>) {
    if let Some(rendered) = warnings {
        ctx.ui.info(rendered.trim_end());
    }
}

/// `checked`'s value, its warnings shown first (see [`show_warnings`]).
pub fn warned<T>(ctx: &Context, checked: (T, Option<String>)) -> T {
    let (value, warnings) = checked;
    show_warnings(ctx, warnings.as_deref());
    value
}
