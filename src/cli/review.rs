//! `streams show`, `diff`, `logs` and `pr`: reviewing what a run's streams did.

use crate::error::{ExitCode, Result};
use crate::ops;
use crate::report::show_view;

use super::{Context, ShowArgs, load};

pub fn show(ctx: &Context, args: ShowArgs) -> Result<ExitCode> {
    let repo = load::open_repo(ctx)?;
    let (dir, state) = ops::show::find_run(&repo, args.run.as_deref())?;
    let show = ops::show::show(&repo, &dir, &state, args.stream.as_deref())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&show).unwrap_or_default());
    } else {
        print!("{}", show_view::render(&show));
    }
    Ok(ExitCode::Success)
}
