//! `streams plan`: validate a plan and show what a run would do, changing nothing.
//!
//! Human output goes to stderr; `--json`, `--dot` and `--mermaid` print data on stdout (and
//! nothing on stderr but warnings). The JSON schema is versioned by its `version` field and
//! documented in docs/plan.md; fields are only ever added within one version.

use crate::error::{Error, ExitCode, Result};
use crate::ops;
use crate::report::plan_view::{View, predicted_human};
use crate::report::print_data;

use super::load;
use super::{Context, PlanArgs};

pub fn plan(ctx: &Context, args: PlanArgs) -> Result<ExitCode> {
    if args.jobs.contains(&0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let repo = load::open_repo(ctx)?;
    let (loaded, mut analysis) = load::load_checked(ctx, &repo, args.plan.as_deref())?;
    // With a history of past runs, every view below predicts from it.
    let learned = ops::plan::learn(&repo, &loaded.plan, analysis.estimates)?;
    let plan = match &learned {
        Some(learned) => {
            analysis.estimates = learned.unit;
            &learned.plan
        }
        None => &loaded.plan,
    };
    let jobs = args
        .jobs
        .first()
        .copied()
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
        let json = serde_json::to_string_pretty(&json)
            .map_err(|e| Error::Internal(format!("could not write JSON: {e}")))?;
        print_data(&format!("{json}\n"))?;
    } else if args.dot {
        print_data(&view.dot())?;
    } else if args.mermaid {
        print_data(&view.mermaid())?;
    } else {
        ctx.ui.info(view.human(&ctx.ui));
        if let Some(learning) = &learning {
            ctx.ui.info(format!("\n{}", learning.human(&ctx.ui, plan)));
        }
        if let Some(predicted) = &predicted {
            ctx.ui.info(format!("\n{}", predicted_human(predicted)));
        }
    }
    Ok(ExitCode::Success)
}
