//! `streams show`, `diff`, `logs` and `pr`: reviewing what a run's streams did.

use crate::error::{ExitCode, Result};
use crate::ops;
use crate::report::show_view;

use super::{ColorChoice, Context, DiffArgs, ShowArgs, load};

pub fn show(ctx: &Context, args: ShowArgs) -> Result<ExitCode> {
    let repo = load::open_repo(ctx)?;
    let (dir, state) = ops::show::find_run(&repo, args.run.as_deref())?;
    let show = ops::show::show(&repo, &dir, &state, args.stream.as_deref())?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&show).unwrap_or_default()
        );
    } else {
        print!("{}", show_view::render(&show));
    }
    Ok(ExitCode::Success)
}

pub fn diff(ctx: &Context, args: DiffArgs) -> Result<ExitCode> {
    let repo = load::open_repo(ctx)?;
    let (_, state) = ops::show::find_run(&repo, args.run.as_deref())?;
    let range = ops::diff::range(&repo, &state, args.stream.as_deref())?;
    // git decides under `auto` (its config, whether stdout is a terminal), as for `git diff`;
    // NO_COLOR is streams' convention, which git does not read.
    let color = match ctx.color {
        ColorChoice::Always => Some(true),
        ColorChoice::Never => Some(false),
        ColorChoice::Auto => std::env::var_os("NO_COLOR")
            .is_some_and(|v| !v.is_empty())
            .then_some(false),
    };
    let code = crate::git::review::show_diff(&crate::git::review::DiffRequest {
        dir: &ctx.cwd,
        from: &range.from,
        to: &range.to,
        stat: args.stat,
        paths: &args.paths,
        color,
    })?;
    // git has said what went wrong on stderr already.
    Ok(if code == 0 {
        ExitCode::Success
    } else {
        ExitCode::Internal
    })
}
