//! `streams plan`: validate a plan and show what a run would do, changing nothing.
//!
//! The view goes to stdout, like `--json`, `--dot` and `--mermaid` (stderr carries only warnings
//! and errors). The JSON schema is versioned by its `version` field and
//! documented in docs/plan.md; fields are only ever added within one version.

use crate::error::{Error, ExitCode, Result};
use crate::ops;
use crate::report::plan_view::{View, predicted_human};
use crate::report::{print_data, print_json};

use super::load;
use super::{Context, PlanArgs};

pub fn plan(ctx: &Context, args: PlanArgs) -> Result<ExitCode> {
    if args.jobs.contains(&0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let (loaded, mut analysis) =
        ops::load::load_checked(&repo, load::plan_file(ctx, args.plan.as_deref()))?;
    load::show_warnings(ctx, loaded.warnings.as_deref());
    for warning in ops::agents::version_warnings(&loaded.plan) {
        ctx.ui.warn(warning);
    }
    // With a history of past runs, every view below predicts from it.
    let learned = ops::plan::learn(&repo, &loaded.plan, analysis.estimates)?;
    let plan = match &learned {
        Some(learned) => {
            analysis.estimates = learned.unit;
            &learned.plan
        }
        None => &loaded.plan,
    };
    // One `--jobs N` is the number to plan with; a list (`1,2,4`) asks for the what-if rows
    // only, and the rest of the view keeps the plan's own `jobs` as its baseline.
    let jobs = match args.jobs.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
    .or(plan.jobs)
    .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let learning = ops::plan::learning(
        &repo,
        plan,
        learned.as_ref(),
        analysis.estimates,
        &args.jobs,
        jobs,
    );
    let view = View::new(plan, &loaded.path, &loaded.base_commit, &analysis, jobs);
    let predicted = if args.predict {
        Some(ops::plan::predict(&repo, plan, &loaded.base_commit)?)
    } else {
        None
    };
    if args.json {
        let mut json = view.json();
        json.predicted_conflicts = predicted.as_ref();
        json.learning = learning.as_ref().map(|l| l.json(plan));
        print_json(&json)?;
    } else if args.dot {
        print_data(&view.dot())?;
    } else if args.mermaid {
        print_data(&view.mermaid())?;
    } else if !ctx.ui.quiet {
        // The view is what the command is for: stdout (`streams plan | less`), coloured only
        // when stdout is a terminal. `-q plan` checks the plan and prints nothing when valid.
        let mut ui = ctx.ui.clone();
        ui.color = ui.color && crate::report::printer::stdout_is_terminal();
        let mut text = format!("{}\n", view.human(&ui).trim_end());
        if let Some(learning) = &learning {
            text.push_str(&format!("\n{}\n", learning.human(&ui, plan).trim_end()));
        }
        if let Some(predicted) = &predicted {
            text.push_str(&format!("\n{}\n", predicted_human(predicted).trim_end()));
        }
        print_data(&text)?;
    }
    Ok(ExitCode::Success)
}
