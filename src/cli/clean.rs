//! `streams clean`: remove the worktrees and branches of a finished or aborted run. Work that
//! was never integrated is listed and kept unless `--force` says otherwise.

use crate::error::{ExitCode, Result};
use crate::ops::{self, clean};

use super::{CleanArgs, Context};

pub fn clean(ctx: &Context, args: CleanArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let Some(found) = clean::find(&repo)? else {
        ctx.ui
            .info("nothing to clean: no streams run in this repository");
        return Ok(ExitCode::Success);
    };
    let clean::Found {
        lock: _lock,
        safe,
        risky,
    } = found;
    let ui = &ctx.ui;
    if args.dry_run {
        if safe.is_empty() && risky.is_empty() {
            ui.info("nothing to clean");
        }
        for item in &safe {
            ui.info(format!("would remove {}", item.what));
        }
        for item in &risky {
            let verb = if args.force {
                "would remove"
            } else {
                "would keep"
            };
            ui.info(format!(
                "{verb} {} ({})",
                item.what,
                item.loses.as_deref().unwrap_or("")
            ));
        }
        return Ok(ExitCode::Success);
    }
    for item in &safe {
        clean::clean_remove(&repo, item)?;
        ui.info(format!("removed {}", item.what));
    }
    if args.force {
        for item in &risky {
            clean::clean_remove(&repo, item)?;
            ui.info(format!(
                "removed {} (lost: {})",
                item.what,
                item.loses.as_deref().unwrap_or("")
            ));
        }
    } else if !risky.is_empty() {
        ui.always("kept, because deleting them would lose work:");
        for item in &risky {
            ui.always(format!(
                "  {}: {}",
                item.what,
                item.loses.as_deref().unwrap_or("")
            ));
        }
        ui.hint("`streams clean --force` deletes these too");
    }
    if safe.is_empty() && risky.is_empty() {
        ui.info("nothing to clean");
    }
    Ok(ExitCode::Success)
}
