//! `streams run`: execute a plan (or, with `--dry-run`, show what would run).

use crate::error::{Error, ExitCode, Result};
use crate::ops::{self, start::RunOptions};
use crate::report::{dry_run_view, hints, print_data};

use super::load;
use super::session;
use super::{Context, RunArgs};

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

pub fn run(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    if args.jobs == Some(0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    if args.machine.only.is_some() {
        return super::machines::run_only(ctx, args);
    }
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let (loaded, analysis) =
        ops::load::load_checked(&repo, load::plan_file(ctx, args.plan.as_deref()))?;
    load::show_warnings(ctx, loaded.warnings.as_deref());
    for warning in ops::start::sandbox_preflight(&loaded.plan)? {
        ctx.ui.warn(warning);
    }
    for warning in ops::agents::version_warnings(&loaded.plan) {
        ctx.ui.warn(warning);
    }
    let jobs = args
        .jobs
        .or(loaded.plan.jobs)
        .unwrap_or_else(default_jobs)
        .max(1);
    if args.dry_run {
        // The prompts in full with --prompts or -v; else their first lines. Writes nothing.
        let full = args.prompts || ctx.ui.verbose > 0;
        let dry = ops::dry_run::dry_run(&repo, &loaded, jobs);
        print_data(&dry_run_view::render(&dry, full))?;
        ctx.ui
            .detail("dry run: no worktree, branch, ref or file was written");
        return Ok(ExitCode::Success);
    }
    let options = RunOptions {
        jobs,
        fail_fast: args.fail_fast,
        restart: args.restart,
        no_check: args.no_check,
        no_gate: args.no_gate,
        max_cost: args.max_cost,
        estimates: analysis.estimates,
    };
    let (parts, last, _lock) = ops::start::start_local(repo, loaded, options)?;
    if let Some(id) = &last.stillborn {
        ctx.ui.info(format!(
            "{}; starting afresh",
            hints::stopped_as_it_started(id)
        ));
    }
    let kept: Vec<(String, String)> = last
        .kept
        .iter()
        .map(|(name, oid)| (name.clone(), oid.to_string()))
        .collect();
    if let Some(line) =
        hints::last_result_line(last.tip.as_deref(), last.merged_into.as_deref(), &kept)
    {
        ctx.ui.info(line);
    }
    let ended = session::start(ctx, parts, "run", args.json, None).run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}
