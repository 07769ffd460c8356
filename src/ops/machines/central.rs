//! `streams integrate --from REMOTE`: the central job of a run spread over machines, in the
//! steps the command takes (the plan's warnings are shown between them): which streams it
//! covers ([`scope`]), what the machines pushed and where the integration starts ([`fetch`]),
//! then the run state with every arrival checked and settled ([`settle_arrivals`]), for the
//! engine to integrate.

use crate::error::{Error, IoContext, Result};
use crate::git::Repo;
use crate::ids::Oid;
use crate::ops::load::LoadedPlan;
use crate::ops::session::{self, EngineParts};
use crate::ops::start::{self, MachineRun, NewRun};
use crate::ownership::Ownership;
use crate::plan::Plan;
use crate::state::{Journal, Machines, RunDir, RunLock, RunPhase, RunState, StateDir};

use super::{
    EarlierStages, Expect, allowed_starts, evaluate, fetch_run, integration_base, settle,
    stage_tip_problem, stages,
};

/// What `integrate` was asked.
pub struct IntegrateRequest<'a> {
    /// The remote the machines pushed to.
    pub remote: &'a str,
    pub run_id: &'a str,
    /// `--stage K`: only stage K's streams; `None`: every stream of the plan.
    pub stage: Option<usize>,
    /// `--base`: the commit the run's first stage started from.
    pub base: Option<&'a str>,
}

/// The streams an integration covers, and the id of its run here.
pub struct Scope {
    pub only: Vec<String>,
    /// Each stage is a run of its own here (its own report, halt and continue).
    pub local_id: String,
}

/// The streams of stage `req.stage` (or all of them) of `names`, the plan read without the
/// repository.
pub fn scope(names: &Plan, req: &IntegrateRequest) -> Result<Scope> {
    let stages = stages(names);
    let covered: Vec<usize> = match req.stage {
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
    let only = names
        .streams
        .iter()
        .enumerate()
        .filter(|(i, _)| covered.contains(i))
        .map(|(_, s)| s.name.clone())
        .collect();
    let local_id = match req.stage {
        Some(k) => format!("{}-stage{k}", req.run_id),
        None => req.run_id.to_string(),
    };
    Ok(Scope { only, local_id })
}

/// What the machines pushed is here, and where the integration starts.
pub struct Fetched {
    /// Held from the fetch to the end of the run.
    pub lock: RunLock,
    /// Where the run's first stage started, as this job knows it (never as a machine says).
    pub first: Option<Oid>,
    /// What this integration starts from: `first`, or the tip of the stage before.
    pub base: Oid,
}

/// Takes the lock, fetches everything of the run from the remote, and finds the base.
pub fn fetch(repo: &Repo, names: &Plan, req: &IntegrateRequest) -> Result<Fetched> {
    let state_dir = StateDir::new(repo.common_dir());
    let lock = RunLock::acquire(&state_dir, "integrate")?;
    fetch_run(repo, req.remote, &names.name, req.run_id)?;
    let first = match req.base {
        Some(commit) => Some(repo.resolve_commit(commit).map_err(|_| {
            Error::usage_with_hint(
                format!("`{commit}` is not a commit in this clone"),
                "fetch it first (in GitHub Actions: actions/checkout with `fetch-depth: 0`)",
            )
        })?),
        None => repo.resolve_commit(&names.base).ok(),
    };
    let base = match integration_base(repo, names, req.run_id, req.stage, first.as_ref())? {
        Ok(base) => base,
        Err(None) => {
            return Err(Error::usage_with_hint(
                format!(
                    "`{}` (the plan's base) is not a commit here, so run {} has nothing to start from",
                    names.base, req.run_id
                ),
                "give `--base COMMIT` (the `--base` its machines were given), or fetch the base branch",
            ));
        }
        Err(Some(before)) => {
            return Err(Error::usage_with_hint(
                format!(
                    "{} has no integration tip for stage {before} of run {}",
                    req.remote, req.run_id
                ),
                format!(
                    "the integrate job of stage {before} has to run first: `streams integrate --from {} --run-id {} --stage {before}`",
                    req.remote, req.run_id
                ),
            ));
        }
    };
    Ok(Fetched { lock, first, base })
}

/// The integration run with what arrived settled, ready for the engine.
pub struct Settled {
    /// The run, its plan cut down to the streams it covers.
    pub parts: EngineParts,
    pub lock: RunLock,
    /// The run was stopped before it finished: the engine recovers it first.
    pub interrupted: bool,
    /// How many of the streams covered arrived.
    pub arrived: usize,
    pub streams: usize,
    /// Integrated already and nothing new arrived: the same result, to say and push again.
    pub again: bool,
}

impl Settled {
    /// The engine's parts, once nothing but the engine is left to do.
    pub fn into_parts(self) -> (EngineParts, RunLock) {
        crate::failpoint::hit("integrate-settled");
        (self.parts, self.lock)
    }
}

/// Opens the integration run (or starts it), checks every stream's arrival against `loaded`
/// (checked at `fetched.base`) and settles it into the run's state (see [`settle`]).
pub fn settle_arrivals(
    repo: Repo,
    loaded: LoadedPlan,
    names: &Plan,
    req: &IntegrateRequest,
    scope: Scope,
    fetched: Fetched,
) -> Result<Settled> {
    let Fetched {
        mut lock,
        first,
        base,
    } = fetched;
    let text = std::fs::read_to_string(&loaded.path)
        .context(|| format!("could not read {}", loaded.path.display()))?;
    let full = &loaded.plan;
    let ownership = Ownership::new(full);
    if let (Some(k), Some(first)) = (req.stage.filter(|&k| k > 0), first.as_ref()) {
        check_stage_tip(&repo, full, &ownership, req, first, &base, k)?;
    }
    let run_dir = StateDir::new(repo.common_dir()).run_dir(&scope.local_id);
    let (mut state, journal, interrupted) =
        open_or_start(&repo, &loaded, &text, req, &scope, &run_dir, &base)?;
    lock.set_run(&scope.local_id, "integrate");
    let plan = session::plan_for_run(full.clone(), Some(&scope.only), true);
    let starts = allowed_starts(&repo, full, &ownership, req.run_id, req.stage, &state.base)?;
    let expect = Expect {
        run_id: req.run_id,
        plan: full,
        plan_hash: &crate::git::text_hash(&text),
        ownership: &ownership,
        starts: &starts,
    };
    // Dependencies first (the run's streams are the plan's, cut down; stages keep plan order).
    let order: Vec<usize> = stages(&plan).into_iter().flatten().collect();
    let before = serde_json::to_string(&state.streams).unwrap_or_default();
    // A stage after the first: what the earlier stages left out holds back what depends on it.
    let earlier = match req.stage {
        Some(k) if k > 0 => {
            let first = integration_base(&repo, names, req.run_id, Some(0), first.as_ref())?
                .unwrap_or_else(|_| base.clone());
            EarlierStages::read(&repo, full, &scope.only, &first, &base)?
        }
        _ => EarlierStages::default(),
    };
    let missing = settle(&repo, &mut state, &plan, &order, &earlier, |s| {
        let in_full = full.stream_index(&plan.streams[s].name).unwrap_or(s);
        evaluate(&repo, &expect, in_full)
    })?;
    let unchanged = serde_json::to_string(&state.streams).unwrap_or_default() == before;
    Ok(Settled {
        again: state.phase == RunPhase::Finished && unchanged,
        interrupted,
        arrived: scope.only.len() - missing.len(),
        streams: scope.only.len(),
        parts: EngineParts {
            repo,
            plan,
            run_dir,
            state,
            journal,
        },
        lock,
    })
}

/// Refuses to build stage `k` on a tip of stage `k - 1` that was moved on the remote after its
/// integration (any runner can push there).
fn check_stage_tip(
    repo: &Repo,
    full: &Plan,
    ownership: &Ownership,
    req: &IntegrateRequest,
    first: &Oid,
    base: &Oid,
    k: usize,
) -> Result<()> {
    let Some(problem) = stage_tip_problem(repo, full, ownership, first, base, k - 1)? else {
        return Ok(());
    };
    let before = k - 1;
    Err(Error::state(
        format!(
            "refusing the tip of stage {before} on {}: {problem}",
            req.remote
        ),
        format!(
            "it was moved on {} after its integration: integrate stage {before} again (`streams integrate --from {} --run-id {} --stage {before}`), then run stage {k}'s streams again",
            req.remote, req.remote, req.run_id
        ),
    ))
}

/// The integration run of `scope.local_id`: as this clone left it (made current again when
/// nothing else runs), or started now from `base`. Returns its state, its journal, and whether
/// it was interrupted.
fn open_or_start(
    repo: &Repo,
    loaded: &LoadedPlan,
    text: &str,
    req: &IntegrateRequest,
    scope: &Scope,
    run_dir: &RunDir,
    base: &Oid,
) -> Result<(RunState, Journal, bool)> {
    let state_dir = StateDir::new(repo.common_dir());
    let local_id = &scope.local_id;
    if !run_dir.state_path().exists() {
        start::check_no_active_run(&state_dir)?;
        let started = start::start_run(&NewRun {
            repo,
            plan: &loaded.plan,
            plan_path: &loaded.path,
            plan_text: text,
            base,
            jobs: 1,
            fail_fast: false,
            // What an earlier integration left on the branch is kept under `previous`.
            restart: true,
            no_check: true,
            no_gate: false,
            machines: Some(MachineRun {
                run_id: local_id.clone(),
                only: scope.only.clone(),
                role: Machines::Integrate {
                    remote: req.remote.to_string(),
                    run_id: req.run_id.to_string(),
                    stage: req.stage,
                    missing: Vec::new(),
                },
            }),
        })?;
        return Ok((started.state, started.journal, false));
    }
    let state = run_dir.load()?;
    if !matches!(state_dir.current_run_id().as_deref(), Some(id) if id == local_id) {
        start::check_no_active_run(&state_dir)?;
        state_dir.set_current(local_id)?;
    }
    match &state.phase {
        RunPhase::Finished => {}
        RunPhase::Running | RunPhase::Interrupted { .. } => {}
        RunPhase::Halted => {
            start::check_no_active_run(&state_dir)?;
        }
        RunPhase::Aborted { .. } => {
            return Err(Error::state(
                format!("run {local_id} was aborted here"),
                "to integrate it again, remove its directory (`streams clean`) or integrate in a fresh clone",
            ));
        }
    }
    let interrupted = !state.phase.is_over();
    Ok((state, session::open_journal(run_dir)?, interrupted))
}
