//! `resume`, `continue`, `skip` and `abort`: steering a run that already exists.

use crate::error::{Error, ExitCode, Result};
use crate::ops::{
    self,
    session::{AfterSkip, Current, NotResolved, Unresolved},
};
use crate::report::{hints, session_view};

use super::session;
use super::{AbortArgs, Context, ContinueArgs, ResumeArgs, SkipArgs, StopArgs, Which};
use crate::ops::runs::Want;

/// The run `which` names (or the one that fits `want`), under its plan's lock; says which
/// when there was a choice.
fn current(ctx: &Context, which: &Which, want: Want, command: &str) -> Result<Current> {
    let selector = ctx.selector(which)?;
    let current = ops::session::current(ops::load::open_repo(&ctx.cwd)?, &selector, want, command)?;
    ctx.say_choice(command, current.choice.as_ref());
    Ok(current)
}

pub fn resume(ctx: &Context, args: ResumeArgs) -> Result<ExitCode> {
    if args.jobs == Some(0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let current = current(ctx, &args.which, Want::Resumable, "resume")?;
    ops::session::check_resumable(&current.state)?;
    let (parts, _lock) = ops::session::engine_parts(current)?;
    let session = session::start(ctx, parts, "resume", args.json, args.jobs);
    let ended = session.recover_and_run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}

pub fn continue_run(ctx: &Context, args: ContinueArgs) -> Result<ExitCode> {
    let current = current(ctx, &args.which, Want::Halted, "continue")?;
    ops::session::check_continuable(&current.state)?;
    // A resolution that is not finished gets its error alone, before the session is announced
    // (a check that cannot run is left to the session, which says why).
    if let Some(unresolved) = ops::session::unfinished_resolution(&current, args.force) {
        not_resolved(ctx, unresolved);
        return Ok(ExitCode::Halted);
    }
    let (parts, _lock) = ops::session::engine_parts(current)?;
    let mut session = session::start(ctx, parts, "continue", args.json, None);
    if let Some(unresolved) = session.resolve(args.force)? {
        not_resolved(ctx, unresolved);
        return Ok(ExitCode::Halted);
    }
    let ended = session.run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}

/// Says what is left to do before `continue` can record the resolution.
fn not_resolved(ctx: &Context, unresolved: NotResolved) {
    let wt = crate::report::shell_quote(&unresolved.resolution_worktree.display().to_string());
    let name = &unresolved.stream;
    match unresolved.why {
        Unresolved::Unmerged(paths) => {
            ctx.ui.error(format!(
                "not resolved yet: {} still unmerged",
                crate::report::quote_paths(&paths)
            ));
            ctx.ui.hint(format!(
                "resolve them in {wt}, then mark them resolved with `git -C {wt} add {}` and run `streams continue`",
                paths.iter().map(|p| crate::report::shell_quote(p)).collect::<Vec<_>>().join(" ")
            ));
        }
        Unresolved::Markers(found) => {
            for (path, line) in &found {
                ctx.ui.error(format!(
                    "not resolved yet: {} still has conflict markers (line {line})",
                    crate::report::quote_path(path)
                ));
            }
            ctx.ui.hint(format!(
                "edit the files in {wt}, remove the markers, then run `streams continue`"
            ));
        }
        Unresolved::DropsStream => {
            ctx.ui.error(format!(
                "the resolution drops all of stream `{name}`'s work: {wt} holds the integration tip unchanged"
            ));
            ctx.ui.hint(format!(
                "its work is on branch streams/{}/{name} (and in the conflict bundle's diffs); \
                 to leave it out, run `streams skip {name}`; to record this anyway, `streams continue --force`",
                unresolved.plan
            ));
        }
        Unresolved::ChangesCleanFiles(paths) => {
            ctx.ui.error(format!(
                "the resolution changes files that merged cleanly: {} (they no longer hold what the merge of `{name}` gave them)",
                crate::report::quote_paths(&paths)
            ));
            ctx.ui.hint("if that is what you mean, run `streams continue --force`; the merged versions are in the conflict bundle's diffs");
        }
        Unresolved::Recreated => {
            ctx.ui.error(format!(
                "the resolution worktree {wt} was deleted: it is laid out again with the conflicts in {}",
                crate::report::quote_paths(&unresolved.files)
            ));
            ctx.ui.hint(format!(
                "resolve them in {wt}, mark them resolved with `git -C {wt} add {}`, then run `streams continue`",
                unresolved.files.iter().map(|p| crate::report::shell_quote(p)).collect::<Vec<_>>().join(" ")
            ));
        }
    }
}

pub fn skip(ctx: &Context, args: SkipArgs) -> Result<ExitCode> {
    let current = current(ctx, &args.which, Want::NotOver, "skip")?;
    ops::session::check_not_over(&current.state, "skip")?;
    let (parts, _lock) = ops::session::engine_parts(current)?;
    let mut session = session::start(ctx, parts, "skip", args.json, None);
    if let AfterSkip::StillHalted {
        stream,
        resolution_worktree,
    } = session.skip(&args.stream)?
    {
        ctx.ui.info(format!(
            "left `{}` out; the run is still halted on a conflict in `{stream}`",
            args.stream
        ));
        ctx.ui
            .hint(hints::halted(&stream, Some(&resolution_worktree), false));
        return Ok(ExitCode::Halted);
    }
    // The engine's event line says the stream was left out, once.
    let ended = session.run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}

pub fn stop(ctx: &Context, args: StopArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let picked = ops::runs::pick(&repo, &ctx.selector(&args.which)?, Want::NotOver, "stop")?;
    ctx.say_choice("stop", picked.choice.as_ref());
    let stopped = ops::stop::stop(&repo, &picked, &args.stream)?;
    session_view::stopped(&ctx.ui, &picked.state, &args.stream, &stopped);
    Ok(ExitCode::Success)
}

pub fn abort(ctx: &Context, args: AbortArgs) -> Result<ExitCode> {
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let picked = ops::runs::pick(&repo, &ctx.selector(&args.which)?, Want::NotOver, "abort")?;
    ctx.say_choice("abort", picked.choice.as_ref());
    let plan = picked.state.plan_name.clone();
    // A run in progress elsewhere is asked to stop first (it saves its state and exits).
    if let Some(holder) = ops::abort::running_here(&repo, &plan) {
        ctx.ui.info(format!(
            "stopping the running `streams {}` (pid {})",
            holder.command, holder.pid
        ));
        ops::abort::stop_holder(&repo, &plan, &holder);
    }
    let this_run = ops::runs::Selector {
        plan: None,
        run: Some(picked.state.run_id.clone()),
    };
    let current = ops::session::current(repo, &this_run, Want::NotOver, "abort")?;
    let (aborted, state) = ops::abort::abort_current(current)?;
    session_view::aborted(
        &ctx.ui,
        &state,
        &aborted
            .kept
            .iter()
            .map(|(name, oid)| (name.clone(), oid.to_string()))
            .collect::<Vec<_>>(),
        aborted.integration_restored.as_deref(),
    );
    Ok(ExitCode::Success)
}
