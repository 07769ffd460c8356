//! `streams clean`: remove what a run, a plan (`--plan`) or every plan (`--all`) left. Work that
//! would be lost is listed and kept unless `--force`, and so is the record of its run.

use crate::error::{ExitCode, Result};
use crate::ops::{self, clean};

use super::{CleanArgs, Context};

pub fn clean(ctx: &Context, args: CleanArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let target = if args.all {
        clean::Target::All
    } else if let Some(id) = &args.run {
        clean::Target::Run(id.clone())
    } else if args.plan.is_some() {
        let selector = ops::runs::Selector::new(&ctx.cwd, args.plan.as_deref(), None)?;
        clean::Target::Plan(selector.plan.unwrap_or_default())
    } else {
        clean::Target::Last
    };
    let found = clean::find(&repo, &target)?;
    let ui = &ctx.ui;
    if let (Some(plan), false) = (found.plans.first(), found.other_plans.is_empty()) {
        ui.info(crate::report::runs_view::clean_picked_line(
            &plan.plan,
            &found.other_plans,
        ));
    }
    for line in &found.passed_over {
        ui.warn(format!("left alone: {line}"));
    }
    if found.plans.is_empty() {
        ui.info(match &target {
            clean::Target::Plan(plan) => {
                format!("nothing to clean: plan `{plan}` left nothing here")
            }
            _ => "nothing to clean: no streams run in this repository".to_string(),
        });
        return Ok(ExitCode::Success);
    }
    let mut kept_any = false;
    for plan in &found.plans {
        let decision = plan.decide(args.force);
        if found.plans.len() > 1 {
            ui.info(format!("plan `{}`:", plan.plan));
        }
        if args.dry_run {
            for item in &decision.remove {
                match &item.loses {
                    Some(loses) => ui.info(format!("would remove {} (lost: {loses})", item.what)),
                    None => ui.info(format!("would remove {}", item.what)),
                }
            }
            for item in &decision.keep {
                ui.info(format!(
                    "would keep {} ({})",
                    item.what,
                    item.loses.as_deref().unwrap_or("")
                ));
            }
            for item in &decision.keep_records {
                ui.info(format!(
                    "would keep {} (the record of the work kept)",
                    item.what
                ));
            }
            kept_any |= !decision.keep.is_empty();
            continue;
        }
        for item in &decision.remove {
            plan.remove(&repo, item)?;
            match &item.loses {
                Some(loses) => ui.info(format!("removed {} (lost: {loses})", item.what)),
                None => ui.info(format!("removed {}", item.what)),
            }
        }
        if !decision.keep.is_empty() {
            kept_any = true;
            ui.always("kept, because deleting them would lose work:");
            for item in &decision.keep {
                ui.always(format!(
                    "  {}: {}",
                    item.what,
                    item.loses.as_deref().unwrap_or("")
                ));
            }
            for item in &decision.keep_records {
                ui.always(format!(
                    "  {}: the record of the work kept above",
                    item.what
                ));
            }
        }
    }
    if kept_any {
        ui.hint("`streams clean --force` deletes these too");
    }
    Ok(ExitCode::Success)
}
