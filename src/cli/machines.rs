//! A run spread over CI machines: `streams run --only STREAM` on each machine, and
//! `streams integrate --from REMOTE` in the central job (see `ops::machines`).

use crate::error::{Error, ExitCode, IoContext, Result};
use crate::ops::machines as ops_machines;
use crate::ops::{self, session::EngineParts, start::MachineRun, start::NewRun};
use crate::state::{Machines, RunLock, RunPhase, StateDir};

use super::load;
use super::session;
use super::{Context, IntegrateArgs, RunArgs};

/// `streams run --only STREAM --run-id ID (--base C | --after-stage K) [--push REMOTE]`.
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
    let repo = ops::load::open_repo(&ctx.cwd)?;
    // The plan's streams and stages first: they say where the stream starts, and the plan is
    // checked against that commit (the clone may not have the plan's base branch).
    let simple = names_only(ctx, &repo, args.plan.as_deref())?;
    let s = ops_machines::only_stream(&simple, name)?;
    let start = ops_machines::stream_start(
        &repo,
        &simple,
        run_id,
        s,
        machine.base.as_deref(),
        machine.after_stage,
        machine.push.as_deref(),
    )?;
    if let Some(remote) = machine.push.as_deref()
        && !state_dir_has_run(&repo, run_id)
    {
        ops_machines::check_remote(&repo, remote, &simple.name, run_id)?;
    }
    let loaded =
        ops::load::load_plan_at(&repo, load::plan_file(ctx, args.plan.as_deref()), &start)?;
    load::show_warnings(ctx, loaded.warnings.as_deref());
    for warning in crate::exec::sandbox::preflight(&loaded.plan)? {
        ctx.ui.warn(warning);
    }
    if loaded.plan.sync == crate::plan::SyncPoint::Task {
        // The engine runs the machine with `sync = "stream"` (see `ops::session`); a person
        // reading the log should not have to know that.
        ctx.ui.warn(format!(
            "the plan's `sync = \"task\"` does not hold on a machine: stream `{name}`'s commits are integrated together, by `streams integrate`, once it is done"
        ));
    }
    let state_dir = StateDir::new(repo.common_dir());
    let mut lock = RunLock::acquire(&state_dir, "run")?;
    let run_dir = state_dir.run_dir(run_id);
    if run_dir.state_path().exists() {
        // The same command again on this machine: a finished run is pushed again (a push that
        // failed, say), nothing is run twice.
        let state = run_dir.load()?;
        if !state.phase.is_over() {
            return Err(Error::state(
                format!("run {run_id} did not finish on this machine"),
                "`streams resume` goes on with it, and pushes when it ends",
            ));
        }
        let published = ops_machines::publish(&state, &run_dir)?;
        crate::report::session_view::published(
            &ctx.ui,
            &state,
            published
                .as_ref()
                .map(|p| (p.remote.as_str(), p.refs.as_slice())),
        );
        return Ok(ExitCode::of_run(crate::exec::finished(&state)));
    }
    ops::start::check_no_active_run(&state_dir)?;
    let text = std::fs::read_to_string(&loaded.path)
        .context(|| format!("could not read {}", loaded.path.display()))?;
    let base = match machine.base {
        Some(_) => start.clone(),
        None => repo.resolve_commit(&simple.base).unwrap_or(start.clone()),
    };
    let only = vec![name.to_string()];
    let started = ops::start::start_run(&NewRun {
        repo: &repo,
        plan: &loaded.plan,
        plan_path: &loaded.path,
        plan_text: &text,
        base: &start,
        jobs: args.jobs.or(loaded.plan.jobs).unwrap_or(1).max(1),
        fail_fast: args.fail_fast,
        // A machine's clone holds no result of a person's to keep apart.
        restart: true,
        no_check: args.no_check,
        // The gate runs on the integration, centrally.
        no_gate: true,
        machines: Some(MachineRun {
            run_id: run_id.to_string(),
            only: only.clone(),
            role: Machines::Stream {
                stream: name.to_string(),
                push: machine.push.clone(),
                after_stage: machine.after_stage,
                base,
            },
        }),
    })?;
    lock.set_run(run_id, "run");
    let plan = ops::session::plan_for_run(loaded.plan, Some(&only), true);
    let parts = EngineParts {
        repo,
        plan,
        run_dir: started.run_dir,
        state: started.state,
        journal: started.journal,
    };
    let ended = session::start(ctx, parts, "run", args.json, None).run()?;
    session::conclude(ctx, ended, args.report.junit.as_deref())
}

/// `streams integrate --from REMOTE --run-id ID [--stage K]`.
pub fn integrate(ctx: &Context, args: IntegrateArgs) -> Result<ExitCode> {
    ops_machines::check_run_id(&args.run_id)?;
    let repo = ops::load::open_repo(&ctx.cwd)?;
    let simple = names_only(ctx, &repo, args.plan.as_deref())?;
    let stages = ops_machines::stages(&simple);
    let covered: Vec<usize> = match args.stage {
        Some(k) if k >= stages.len() => {
            return Err(Error::usage_with_hint(
                format!(
                    "the plan has {} stage(s), numbered from 0: there is no stage {k}",
                    stages.len()
                ),
                "`streams plan` lists them as waves (wave 1 is stage 0)",
            ));
        }
        Some(k) => stages[k].clone(),
        None => stages.iter().flatten().copied().collect(),
    };
    let only: Vec<String> = simple
        .streams
        .iter()
        .enumerate()
        .filter(|(i, _)| covered.contains(i))
        .map(|(_, s)| s.name.clone())
        .collect();
    // Each stage is a run of its own here (its own report, halt and continue).
    let local_id = match args.stage {
        Some(k) => format!("{}-stage{k}", args.run_id),
        None => args.run_id.clone(),
    };
    let state_dir = StateDir::new(repo.common_dir());
    let mut lock = RunLock::acquire(&state_dir, "integrate")?;
    ops_machines::fetch_run(&repo, &args.from, &simple.name, &args.run_id)?;
    // Where the run's first stage started, as this job knows it (never as a machine says).
    let plan_base = match &args.base {
        Some(commit) => Some(repo.resolve_commit(commit).map_err(|_| {
            Error::usage_with_hint(
                format!("`{commit}` is not a commit in this clone"),
                "fetch it first (in GitHub Actions: actions/checkout with `fetch-depth: 0`)",
            )
        })?),
        None => repo.resolve_commit(&simple.base).ok(),
    };
    let base = match ops_machines::integration_base(
        &repo,
        &simple,
        &args.run_id,
        args.stage,
        plan_base.as_ref(),
    )? {
        Ok(base) => base,
        Err(None) => {
            return Err(Error::usage_with_hint(
                format!(
                    "`{}` (the plan's base) is not a commit here, so run {} has nothing to start from",
                    simple.base, args.run_id
                ),
                "give `--base COMMIT` (the `--base` its machines were given), or fetch the base branch",
            ));
        }
        Err(Some(before)) => {
            return Err(Error::usage_with_hint(
                format!(
                    "{} has no integration tip for stage {before} of run {}",
                    args.from, args.run_id
                ),
                format!(
                    "the integrate job of stage {before} has to run first: `streams integrate --from {} --run-id {} --stage {before}`",
                    args.from, args.run_id
                ),
            ));
        }
    };
    let loaded = ops::load::load_plan_at(&repo, load::plan_file(ctx, args.plan.as_deref()), &base)?;
    load::show_warnings(ctx, loaded.warnings.as_deref());
    let text = std::fs::read_to_string(&loaded.path)
        .context(|| format!("could not read {}", loaded.path.display()))?;
    let full = &loaded.plan;
    let ownership = crate::ownership::Ownership::new(full);
    if let (Some(k), Some(first)) = (args.stage.filter(|&k| k > 0), plan_base.as_ref())
        && let Some(problem) =
            ops_machines::stage_tip_problem(&repo, full, &ownership, first, &base, k - 1)?
    {
        let before = k - 1;
        return Err(Error::state(
            format!(
                "refusing the tip of stage {before} on {}: {problem}",
                args.from
            ),
            format!(
                "it was moved on {} after its integration: integrate stage {before} again (`streams integrate --from {} --run-id {} --stage {before}`), then run stage {k}'s streams again",
                args.from, args.from, args.run_id
            ),
        ));
    }
    let run_dir = state_dir.run_dir(&local_id);
    let (mut state, journal, interrupted) = if run_dir.state_path().exists() {
        let state = run_dir.load()?;
        if !matches!(state_dir.current_run_id().as_deref(), Some(id) if id == local_id) {
            ops::start::check_no_active_run(&state_dir)?;
            state_dir.set_current(&local_id)?;
        }
        match &state.phase {
            RunPhase::Finished => {}
            RunPhase::Running | RunPhase::Interrupted { .. } => {}
            RunPhase::Halted(_) => {
                ops::start::check_no_active_run(&state_dir)?;
            }
            RunPhase::Aborted { .. } => {
                return Err(Error::state(
                    format!("run {local_id} was aborted here"),
                    "to integrate it again, remove its directory (`streams clean`) or integrate in a fresh clone",
                ));
            }
        }
        let interrupted = !state.phase.is_over();
        (state, ops::session::open_journal(&run_dir)?, interrupted)
    } else {
        ops::start::check_no_active_run(&state_dir)?;
        let started = ops::start::start_run(&NewRun {
            repo: &repo,
            plan: full,
            plan_path: &loaded.path,
            plan_text: &text,
            base: &base,
            jobs: 1,
            fail_fast: false,
            // What an earlier integration left on the branch is kept under `previous`.
            restart: true,
            no_check: true,
            no_gate: false,
            machines: Some(MachineRun {
                run_id: local_id.clone(),
                only: only.clone(),
                role: Machines::Integrate {
                    remote: args.from.clone(),
                    run_id: args.run_id.clone(),
                    stage: args.stage,
                    missing: Vec::new(),
                },
            }),
        })?;
        (started.state, started.journal, false)
    };
    lock.set_run(&local_id, "integrate");
    let plan = ops::session::plan_for_run(full.clone(), Some(&only), true);
    let plan_hash = crate::git::text_hash(&text);
    let starts = ops_machines::allowed_starts(
        &repo,
        full,
        &ownership,
        &args.run_id,
        args.stage,
        &state.base,
    )?;
    let expect = ops_machines::Expect {
        run_id: &args.run_id,
        plan: full,
        plan_hash: &plan_hash,
        ownership: &ownership,
        starts: &starts,
    };
    // Dependencies first (the run's streams are the plan's, cut down; stages keep plan order).
    let order: Vec<usize> = ops_machines::stages(&plan).into_iter().flatten().collect();
    let before = serde_json::to_string(&state.streams).unwrap_or_default();
    // A stage after the first: what the earlier stages left out holds back what depends on it.
    let earlier = match args.stage {
        Some(k) if k > 0 => {
            let first = ops_machines::integration_base(
                &repo,
                &simple,
                &args.run_id,
                Some(0),
                plan_base.as_ref(),
            )?
            .unwrap_or_else(|_| base.clone());
            ops_machines::EarlierStages::read(&repo, full, &only, &first, &base)?
        }
        _ => ops_machines::EarlierStages::default(),
    };
    let missing = ops_machines::settle(&repo, &mut state, &plan, &order, &earlier, |s| {
        let in_full = full.stream_index(&plan.streams[s].name).unwrap_or(s);
        ops_machines::evaluate(&repo, &expect, in_full)
    })?;
    let arrived = only.len() - missing.len();
    ctx.ui.info(format!(
        "integrating run {} from {}{}: {arrived} of {} stream(s) arrived",
        args.run_id,
        args.from,
        args.stage
            .map(|k| format!(", stage {k}"))
            .unwrap_or_default(),
        only.len()
    ));
    let unchanged = serde_json::to_string(&state.streams).unwrap_or_default() == before;
    if state.phase == RunPhase::Finished && unchanged {
        // Integrated already and nothing new arrived: the same result, said and pushed again.
        let reporter = crate::report::reporter::for_session(&ctx.ui, &state, args.json);
        let ended = ops::session::Ended::already(state, run_dir, reporter);
        return session::conclude(ctx, ended, args.report.junit.as_deref());
    }
    crate::failpoint::hit("integrate-settled");
    let parts = EngineParts {
        repo,
        plan,
        run_dir: run_dir.clone(),
        state,
        journal,
    };
    let session = session::start(ctx, parts, "integrate", args.json, None);
    let ended = if interrupted {
        session.recover_and_run()?
    } else {
        session.run()?
    };
    session::conclude(ctx, ended, args.report.junit.as_deref())
}

/// Whether this clone has run `run_id` already (the same command again pushes what it left).
fn state_dir_has_run(repo: &crate::git::Repo, run_id: &str) -> bool {
    StateDir::new(repo.common_dir())
        .run_dir(run_id)
        .state_path()
        .exists()
}

/// The plan's names, streams and dependencies (see [`ops::load::names_only`]).
fn names_only(
    ctx: &Context,
    repo: &crate::git::Repo,
    arg: Option<&std::path::Path>,
) -> Result<crate::plan::Plan> {
    let (plan, warnings) = ops::load::names_only(repo, load::plan_file(ctx, arg))?;
    load::show_warnings(ctx, warnings.as_deref());
    Ok(plan)
}
