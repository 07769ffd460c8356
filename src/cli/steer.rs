//! `resume`, `continue`, `skip` and `abort`: steering a run that already exists.

use std::path::PathBuf;

use crate::error::{Error, ExitCode, Result};
use crate::ops::{
    self,
    session::{Current, NotResolved, Resolved, Unresolved},
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

/// The run's workspace the command starts in, if it is in one, for [`where_to_go`].
fn standing_in(ctx: &Context, current: &Current) -> (Option<PathBuf>, PathBuf) {
    (
        ops::cwd::workspace_holding(&current.state, &ctx.cwd),
        current.state.repo_root.clone(),
    )
}

/// Says where to `cd` when the command removed the workspace it was started in (the
/// resolution workspace the halt said to go to): the person's shell is left there.
fn where_to_go(ctx: &Context, (standing_in, root): (Option<PathBuf>, PathBuf)) {
    if let Some(removed) = ops::cwd::removed(standing_in) {
        ctx.ui.hint(hints::removed_workspace(&removed, &root));
    }
}

pub fn continue_run(ctx: &Context, args: ContinueArgs) -> Result<ExitCode> {
    let current = current(ctx, &args.which, Want::Halted, "continue")?;
    let standing = standing_in(ctx, &current);
    let result = continue_current(ctx, current, args);
    where_to_go(ctx, standing);
    result
}

fn continue_current(ctx: &Context, current: Current, args: ContinueArgs) -> Result<ExitCode> {
    ops::session::check_continuable(&current.state)?;
    let s = ops::session::parked_stream(&current.state, args.stream.as_deref())?;
    // A resolution that is not finished gets its error alone, before the session is announced
    // (a check that cannot run is left to the session, which says why).
    if let Some(unresolved) = ops::session::unfinished_resolution(&current, s, args.force) {
        not_resolved(ctx, unresolved);
        return Ok(ExitCode::Halted);
    }
    let (parts, _lock) = ops::session::engine_parts(current)?;
    let mut session = session::start(ctx, parts, "continue", args.json, None);
    match session.resolve(s, args.force)? {
        // Said by the engine, before the events of what follows.
        Resolved::Landed => {}
        Resolved::NotResolved(unresolved) => {
            not_resolved(ctx, unresolved);
            return Ok(ExitCode::Halted);
        }
        Resolved::ParkedAgain {
            stream,
            files,
            resolution_worktree,
            kept,
            tip,
        } => {
            ctx.ui.error(format!(
                "`{stream}`'s resolution conflicts with what was integrated since it parked, in {}: it stays parked, laid out again against {}",
                crate::report::quote_paths(&files),
                crate::report::short(&tip)
            ));
            ctx.ui.hint(format!(
                "your resolution is kept on {kept}; resolve the new conflict in {} and run `streams continue {stream}` again",
                resolution_worktree.display()
            ));
            return Ok(ExitCode::Halted);
        }
    }
    let ended = session.run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}

/// Says what is left to do before `continue` can record the resolution.
fn not_resolved(ctx: &Context, unresolved: NotResolved) {
    let wt = crate::report::shell_quote(&unresolved.resolution_worktree.display().to_string());
    let name = &unresolved.stream;
    let again = format!("`streams continue {name}`");
    match unresolved.why {
        Unresolved::Unmerged(paths) => {
            ctx.ui.error(format!(
                "not resolved yet: {} still unmerged",
                crate::report::quote_paths(&paths)
            ));
            ctx.ui.hint(format!(
                "resolve them in {wt}, then mark them resolved with `git -C {wt} add {}` and run {again}",
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
                "edit the files in {wt}, remove the markers, then run {again}"
            ));
        }
        Unresolved::DropsStream => {
            ctx.ui.error(format!(
                "the resolution drops all of stream `{name}`'s work: {wt} holds the integration tip unchanged"
            ));
            ctx.ui.hint(format!(
                "its work is on branch streams/{}/{name} (and in the conflict bundle's diffs); \
                 to leave it out, run `streams skip {name}`; to record this anyway, `streams continue {name} --force`",
                unresolved.plan
            ));
        }
        Unresolved::ChangesCleanFiles(paths) => {
            ctx.ui.error(format!(
                "the resolution changes files that merged cleanly: {} (they no longer hold what the merge of `{name}` gave them)",
                crate::report::quote_paths(&paths)
            ));
            ctx.ui.hint(format!("if that is what you mean, run `streams continue {name} --force`; the merged versions are in the conflict bundle's diffs"));
        }
        Unresolved::Recreated => {
            ctx.ui.error(format!(
                "the resolution worktree {wt} was deleted: it is laid out again with the conflicts in {}",
                crate::report::quote_paths(&unresolved.files)
            ));
            ctx.ui.hint(format!(
                "resolve them in {wt}, mark them resolved with `git -C {wt} add {}`, then run {again}",
                unresolved.files.iter().map(|p| crate::report::shell_quote(p)).collect::<Vec<_>>().join(" ")
            ));
        }
    }
}

pub fn skip(ctx: &Context, args: SkipArgs) -> Result<ExitCode> {
    let current = current(ctx, &args.which, Want::NotOver, "skip")?;
    let standing = standing_in(ctx, &current);
    let result = skip_in(ctx, current, args);
    where_to_go(ctx, standing);
    result
}

fn skip_in(ctx: &Context, current: Current, args: SkipArgs) -> Result<ExitCode> {
    ops::session::check_not_over(&current.state, "skip")?;
    let (parts, _lock) = ops::session::engine_parts(current)?;
    let mut session = session::start(ctx, parts, "skip", args.json, None);
    session.skip(&args.stream)?;
    // The engine's event line says the stream was left out, once; then the run goes on with
    // whatever can move (and halts again at once if nothing can).
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
    let standing = standing_in(ctx, &current);
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
        &ops::runs::plan_flag(&state),
    );
    where_to_go(ctx, standing);
    Ok(ExitCode::Success)
}
