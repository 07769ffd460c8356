//! A run spread over CI machines: `streams run --only STREAM` on each machine, and
//! `streams integrate --from REMOTE` in the central job (the work is in `ops::machines`).

use crate::error::{Error, ExitCode, Result};
use crate::ops::machines::central::{self, IntegrateRequest};
use crate::ops::machines::only::{self, MachineRunStart, OnlyOptions, OnlyRequest};
use crate::ops::{self, machines as ops_machines};
use crate::report::{reporter, session_view};

use super::load;
use super::session;
use super::{Context, IntegrateArgs, RunArgs};

/// `streams run --only STREAM --run-id ID (--base C | --after-stage K --start C) [--push REMOTE]`.
pub fn run_only(ctx: &Context, args: RunArgs) -> Result<ExitCode> {
    let machine = &args.machine;
    let (Some(name), Some(run_id)) = (machine.only.as_deref(), machine.run_id.as_deref()) else {
        return Err(Error::usage("`--only` needs `--run-id ID`"));
    };
    if args.dry_run {
        return Err(Error::usage_with_hint(
            "`--dry-run` does not combine with `--only`",
            "`streams run --dry-run` shows every stream's prompts",
        ));
    }
    ops_machines::check_run_id(run_id)?;
    let req = OnlyRequest {
        stream: name,
        run_id,
        base: machine.base.as_deref(),
        after_stage: machine.after_stage,
        start: machine.start.as_deref(),
        push: machine.push.as_deref(),
    };
    let repo = ops::load::open_repo(&ctx.cwd)?;
    // The plan's streams and stages first: they say where the stream starts, and the plan is
    // checked against that commit (the clone may not have the plan's base branch).
    let plan_file = load::plan_file(ctx, args.plan.as_deref());
    let names = load::warned(ctx, ops::load::names_only(&repo, plan_file)?);
    let start = only::machine_start(&repo, &names, &req)?;
    let (loaded, analysis) = ops::load::load_checked_plan_at(&repo, plan_file, &start)?;
    load::show_warnings(ctx, loaded.warnings.as_deref());
    for warning in only::preflight(&loaded.plan, name)? {
        ctx.ui.warn(warning);
    }
    let options = OnlyOptions {
        jobs: args.jobs,
        fail_fast: args.fail_fast,
        no_check: args.no_check,
        estimates: analysis.estimates,
    };
    match only::start_machine_run(repo, loaded, &names, &req, start, options)? {
        MachineRunStart::New(parts, _lock) => {
            let ended = session::start(ctx, *parts, "run", args.json, None).run()?;
            session::conclude(ctx, ended, args.report.junit.as_deref())
        }
        MachineRunStart::Finished(state, run_dir, _lock) => {
            let published = ops_machines::publish(&state, &run_dir)?;
            session_view::published(
                &ctx.ui,
                &state,
                published.as_ref().map(|p| session_view::Handed {
                    remote: &p.remote,
                    refs: &p.refs,
                    outputs: &p.outputs,
                }),
            );
            Ok(ExitCode::of_run(&ops::session::finished(&state)))
        }
    }
}

/// `streams integrate --from REMOTE --run-id ID [--stage K [--start C]] [--manifest S=C]...`.
pub fn integrate(ctx: &Context, args: IntegrateArgs) -> Result<ExitCode> {
    ops_machines::check_run_id(&args.run_id)?;
    let req = IntegrateRequest {
        remote: &args.from,
        run_id: &args.run_id,
        stage: args.stage,
        base: args.base.as_deref(),
        start: args.start.as_deref(),
        manifests: &args.manifest,
    };
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let plan_file = load::plan_file(ctx, args.plan.as_deref());
    let names = load::warned(ctx, ops::load::names_only(&repo, plan_file)?);
    let scope = central::scope(&names, &req)?;
    let fetched = central::fetch(&repo, &names, &req, &scope)?;
    let (loaded, analysis) = ops::load::load_checked_plan_at(&repo, plan_file, &fetched.base)?;
    load::show_warnings(ctx, loaded.warnings.as_deref());
    let settled = central::settle_arrivals(
        repo,
        loaded,
        &names,
        &req,
        scope,
        fetched,
        analysis.estimates,
    )?;
    ctx.ui.info(format!(
        "integrating run {} from {}{}: {} of {} stream(s) arrived",
        args.run_id,
        args.from,
        args.stage
            .map(|k| format!(", stage {k}"))
            .unwrap_or_default(),
        settled.arrived,
        settled.streams
    ));
    if settled.again {
        // Integrated already and nothing new arrived: the same result, said and pushed again.
        let reporter = reporter::for_session(&ctx.ui, &settled.parts.state, args.json);
        let parts = settled.parts;
        let ended = ops::session::Ended::already(parts.state, parts.run_dir, reporter);
        return session::conclude(ctx, ended, args.report.junit.as_deref());
    }
    let interrupted = settled.interrupted;
    let (parts, _lock) = settled.into_parts();
    let session = session::start(ctx, parts, "integrate", args.json, None);
    let ended = if interrupted {
        session.recover_and_run()?
    } else {
        session.run()?
    };
    session::conclude(ctx, ended, args.report.junit.as_deref())
}
