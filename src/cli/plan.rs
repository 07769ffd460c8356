//! `streams plan`: validate a plan and show what a run would do, changing nothing.
//!
//! The view goes to stdout, like `--json`, `--dot` and `--mermaid` (stderr carries only warnings
//! and errors). The JSON schema is versioned by its `version` field and
//! documented in docs/plan.md; fields are only ever added within one version.

use crate::error::{Error, ExitCode, Result};
use crate::ops;
use crate::report::plan_view::{View, predicted_human};

use super::load;
use super::{Context, PlanArgs};

pub fn plan(ctx: &Context, args: PlanArgs) -> Result<ExitCode> {
    if args.jobs == Some(0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let repo = load::open_repo(ctx)?;
    let (loaded, analysis) = load::load_checked(ctx, &repo, args.plan.as_deref())?;
    let jobs = args
        .jobs
        .or(loaded.plan.jobs)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let view = View::new(
        &loaded.plan,
        &loaded.path,
        &loaded.base_commit,
        &analysis,
        jobs,
    );
    let predicted = if args.predict {
        Some(ops::plan::predict(
            &repo,
            &loaded.plan,
            &loaded.base_commit,
        )?)
    } else {
        None
    };
    if args.json {
        let mut json = view.json();
        json.predicted_conflicts = predicted.as_ref();
        let json = serde_json::to_string_pretty(&json)
            .map_err(|e| Error::Internal(format!("could not write JSON: {e}")))?;
        println!("{json}");
    } else if args.dot {
        print!("{}", view.dot());
    } else if args.mermaid {
        print!("{}", view.mermaid());
    } else if !ctx.ui.quiet {
        // The view is what the command is for: stdout (`streams plan | less`), coloured only
        // when stdout is a terminal. `-q plan` checks the plan and prints nothing when valid.
        let mut ui = ctx.ui.clone();
        ui.color = ui.color && std::io::IsTerminal::is_terminal(&std::io::stdout());
        println!("{}", view.human(&ui).trim_end());
        if let Some(predicted) = &predicted {
            println!("\n{}", predicted_human(predicted).trim_end());
        }
    }
    Ok(ExitCode::Success)
}
