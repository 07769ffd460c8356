//! `resume`, `continue`, `skip` and `abort`: steering a run that already exists.

use std::time::{Duration, Instant};

use crate::coordinator::Unresolved;
use crate::error::{Error, ExitCode, IoContext, Result};
use crate::exec::control;
use crate::git::Repo;
use crate::state::{Journal, RunDir, RunLock, RunPhase, RunState, StateDir, lock};

use super::load;
use super::session::{self, EngineParts};
use super::{Context, ContinueArgs, ResumeArgs, SkipArgs};

/// The repository's current run, under the lock.
struct Current {
    repo: Repo,
    _lock: RunLock,
    run_dir: RunDir,
    state: RunState,
}

fn current(ctx: &Context, command: &str) -> Result<Current> {
    let repo = load::open_repo(ctx)?;
    let state_dir = StateDir::new(repo.common_dir());
    let mut lock = RunLock::acquire(&state_dir, command)?;
    let Some((run_dir, state)) = state_dir.current()? else {
        return Err(Error::state(
            format!("there is no run to {command} in this repository"),
            "start one with `streams run`",
        ));
    };
    lock.set_run(&state.run_id, command);
    Ok(Current {
        repo,
        _lock: lock,
        run_dir,
        state,
    })
}

fn parts(current: Current) -> Result<(EngineParts, RunLock)> {
    let plan = load::plan_from_copy(&current.run_dir, &current.state)?;
    let journal = Journal::open(&current.run_dir.journal_path()).context(|| {
        format!(
            "could not open the journal {}",
            current.run_dir.journal_path().display()
        )
    })?;
    Ok((
        EngineParts {
            repo: current.repo,
            plan,
            run_dir: current.run_dir,
            state: current.state,
            journal,
        },
        current._lock,
    ))
}

fn over(state: &RunState, command: &str) -> Error {
    Error::state(
        format!(
            "nothing to {command}: run {} of plan `{}` is {}",
            state.run_id,
            state.plan_name,
            state.phase.name()
        ),
        "start a new run with `streams run`",
    )
}

pub fn resume(ctx: &Context, args: ResumeArgs) -> Result<ExitCode> {
    if args.jobs == Some(0) {
        return Err(Error::usage("--jobs must be at least 1"));
    }
    let mut current = current(ctx, "resume")?;
    match &current.state.phase {
        RunPhase::Running | RunPhase::Interrupted { .. } => {}
        RunPhase::Halted(halt) => {
            let name = &current.state.streams[halt.unit.stream].name;
            return Err(Error::state(
                format!(
                    "run {} is halted on a conflict in stream `{name}`, not interrupted",
                    current.state.run_id
                ),
                format!(
                    "resolve it and run `streams continue`, or `streams skip {name}`, or `streams abort`"
                ),
            ));
        }
        _ => return Err(over(&current.state, "resume")),
    }
    if let Some(jobs) = args.jobs {
        current.state.jobs = jobs.max(1);
    }
    let run_dir = current.run_dir.clone();
    let (parts, _lock) = parts(current)?;
    let mut engine = session::engine(ctx, parts, "resume", args.json);
    let finished = session::runtime()?.block_on(async {
        engine.recover().await?;
        engine.run().await
    })?;
    session::conclude(ctx, &run_dir, finished)
}

pub fn continue_run(ctx: &Context, args: ContinueArgs) -> Result<ExitCode> {
    let current = current(ctx, "continue")?;
    match &current.state.phase {
        RunPhase::Halted(_) => {}
        RunPhase::Running | RunPhase::Interrupted { .. } => {
            return Err(Error::state(
                format!(
                    "run {} is not halted on a conflict: it was interrupted",
                    current.state.run_id
                ),
                "run `streams resume` to go on",
            ));
        }
        _ => return Err(over(&current.state, "continue")),
    }
    let run_dir = current.run_dir.clone();
    let (parts, _lock) = parts(current)?;
    let mut engine = session::engine(ctx, parts, "continue", args.json);
    if let Some(unresolved) = engine.resolve(args.force)? {
        let RunPhase::Halted(halt) = &engine.state().phase else {
            unreachable!("checked above")
        };
        let wt = crate::report::shell_quote(&halt.resolution_worktree.display().to_string());
        match unresolved {
            Unresolved::Unmerged(paths) => {
                ctx.ui.error(format!(
                    "not resolved yet: {} still unmerged",
                    paths.join(", ")
                ));
                ctx.ui.hint(format!(
                    "resolve them in {wt}, then mark them resolved with `git -C {wt} add {}` and run `streams continue`",
                    paths.iter().map(|p| crate::report::shell_quote(p)).collect::<Vec<_>>().join(" ")
                ));
            }
            Unresolved::Markers(found) => {
                for (path, line) in &found {
                    ctx.ui.error(format!(
                        "not resolved yet: {path} still has conflict markers (line {line})"
                    ));
                }
                ctx.ui.hint(format!(
                    "edit the files in {wt}, remove the markers, then run `streams continue`"
                ));
            }
            Unresolved::DropsStream => {
                let name = &engine.state().streams[halt.unit.stream].name;
                ctx.ui.error(format!(
                    "the resolution drops all of stream `{name}`'s work: {wt} holds the integration tip unchanged"
                ));
                ctx.ui.hint(format!(
                    "its work is on branch streams/{}/{name} (and in the conflict bundle's diffs); \
                     to leave it out, run `streams skip {name}`; to record this anyway, `streams continue --force`",
                    engine.state().plan_name
                ));
            }
            Unresolved::ChangesCleanFiles(paths) => {
                let name = &engine.state().streams[halt.unit.stream].name;
                ctx.ui.error(format!(
                    "the resolution changes files that merged cleanly: {} (they no longer hold what the merge of `{name}` gave them)",
                    paths.join(", ")
                ));
                ctx.ui.hint("if that is what you mean, run `streams continue --force`; the merged versions are in the conflict bundle's diffs");
            }
        }
        return Ok(ExitCode::Halted);
    }
    let finished = session::runtime()?.block_on(engine.run())?;
    session::conclude(ctx, &run_dir, finished)
}

pub fn skip(ctx: &Context, args: SkipArgs) -> Result<ExitCode> {
    let current = current(ctx, "skip")?;
    if current.state.phase.is_over() {
        return Err(over(&current.state, "skip"));
    }
    let run_dir = current.run_dir.clone();
    let (parts, _lock) = parts(current)?;
    let mut engine = session::engine(ctx, parts, "skip", args.json);
    let still_halted = engine.skip(&args.stream)?;
    if still_halted {
        if let RunPhase::Halted(halt) = &engine.state().phase {
            let name = &engine.state().streams[halt.unit.stream].name;
            ctx.ui.info(format!(
                "left `{}` out; the run is still halted on a conflict in `{name}`",
                args.stream
            ));
            ctx.ui.hint(format!(
                "resolve it in {} and run `streams continue`, or `streams skip {name}`",
                halt.resolution_worktree.display()
            ));
        }
        return Ok(ExitCode::Halted);
    }
    ctx.ui.info(format!(
        "left `{}` out of the run (its branch is kept); going on",
        args.stream
    ));
    let finished = session::runtime()?.block_on(engine.run())?;
    session::conclude(ctx, &run_dir, finished)
}

pub fn abort(ctx: &Context) -> Result<ExitCode> {
    let repo = load::open_repo(ctx)?;
    let state_dir = StateDir::new(repo.common_dir());
    // A run in progress elsewhere is asked to stop first (it saves its state and exits).
    if let Some(holder) = lock::current_holder(&state_dir) {
        if holder.host == lock::hostname() {
            ctx.ui.info(format!(
                "stopping the running `streams {}` (pid {})",
                holder.command, holder.pid
            ));
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(holder.pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            while lock::current_holder(&state_dir).is_some() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let current = current(ctx, "abort")?;
    let Current {
        repo,
        _lock,
        run_dir,
        mut state,
    } = current;
    if state.phase.is_over() {
        return Err(over(&state, "abort"));
    }
    let journal = Journal::open(&run_dir.journal_path()).context(|| {
        format!(
            "could not open the journal {}",
            run_dir.journal_path().display()
        )
    })?;
    let aborted =
        session::runtime()?.block_on(control::abort(&repo, &run_dir, &mut state, &journal))?;
    let branch = crate::layout::short_branch(&state.integration_ref);
    ctx.ui.always(format!(
        "aborted run {} of plan `{}`",
        state.run_id, state.plan_name
    ));
    match &aborted.integration_restored {
        Some(before) => ctx.ui.info(format!(
            "{branch} is back at {}",
            crate::coordinator::short(before)
        )),
        None => ctx.ui.info(format!(
            "{branch} is removed (it did not exist before the run)"
        )),
    }
    if aborted.kept.is_empty() {
        ctx.ui.info("no work was lost: nothing had been done yet");
    } else {
        ctx.ui.info("kept (nothing is lost):");
        for (name, oid) in &aborted.kept {
            ctx.ui
                .info(format!("  {name}  {}", crate::coordinator::short(oid)));
        }
    }
    ctx.ui.info(format!(
        "stream branches stay as they are: streams/{}/<stream>; `streams clean` removes worktrees",
        state.plan_name
    ));
    Ok(ExitCode::Success)
}
