//! `streams integrate --from REMOTE`: the central job of a run spread over machines, in the
//! steps the command takes (the plan's warnings are shown between them): which streams it
//! covers ([`scope`]), what the machines pushed and where the integration starts ([`fetch`]),
//! then the run state with every arrival checked and settled ([`settle_arrivals`]), for the
//! engine to integrate.
//!
//! What it builds on comes from the command line, as the jobs before reported it: the run's
//! base, the tip of the stage before (`--start`), each stream's manifest (`--manifest`).

use std::collections::BTreeMap;

use crate::error::{Error, IoContext, Result};
use crate::git::Repo;
use crate::ids::Oid;
use crate::ops::load::LoadedPlan;
use crate::ops::session::{self, EngineParts};
use crate::ops::start::{self, MachineRun, NewRun};
use crate::ownership::Ownership;
use crate::plan::Plan;
use crate::state::{Journal, Machines, RunLock, RunPhase, RunState, StateDir};
use crate::text::short7;

use super::{
    EarlierStages, Expect, Reported, evaluate, fetch_reported, fetch_run, integration_branch,
    is_full_id, reported_commit, settle, stages,
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
    /// `--start`: for a stage after the first, the tip the stage before was integrated to, as
    /// its integrate job reported it.
    pub start: Option<&'a str>,
    /// `--manifest STREAM=COMMIT`, each as given: the manifest each stream's job reported
    /// (an empty commit: it reported none). None given: the manifests on the remote are read.
    pub manifests: &'a [(String, String)],
}

/// The streams an integration covers, and the id of its run here.
pub struct Scope {
    pub only: Vec<String>,
    /// Each stage is a run of its own here (its own report, halt and continue).
    pub local_id: String,
    /// Where each stream's manifest is taken from.
    pub reported: Reported,
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
    let only: Vec<String> = names
        .streams
        .iter()
        .enumerate()
        .filter(|(i, _)| covered.contains(i))
        .map(|(_, s)| s.name.clone())
        .collect();
    match (req.stage, req.start) {
        (Some(k), None) if k > 0 => {
            return Err(Error::usage_with_hint(
                format!("stage {k} builds on stage {}'s result: give its tip", k - 1),
                format!(
                    "`--start COMMIT`: the tip `streams integrate --stage {}` reported (in GitHub Actions, its job's output `tip`)",
                    k - 1
                ),
            ));
        }
        (Some(k), Some(_)) if k > 0 => {}
        (_, Some(_)) => {
            return Err(Error::usage_with_hint(
                "`--start` is for a stage after the first: it names the tip of the stage before",
                "a first stage (or a whole integration) starts from `--base`",
            ));
        }
        _ => {}
    }
    let reported = reported(&only, req)?;
    let local_id = match req.stage {
        Some(k) => format!("{}-stage{k}", req.run_id),
        None => req.run_id.to_string(),
    };
    Ok(Scope {
        only,
        local_id,
        reported,
    })
}

/// The manifests `--manifest` names, checked against the streams the integration covers.
fn reported(only: &[String], req: &IntegrateRequest) -> Result<Reported> {
    if req.manifests.is_empty() {
        return Ok(Reported::Refs);
    }
    let mut ids: BTreeMap<String, Option<Oid>> = only.iter().map(|s| (s.clone(), None)).collect();
    let mut given = std::collections::BTreeSet::new();
    for (stream, commit) in req.manifests {
        let Some(slot) = ids.get_mut(stream) else {
            return Err(Error::usage_with_hint(
                format!(
                    "--manifest {stream}=...: `{stream}` is not a stream this integration covers"
                ),
                format!("it covers {}", only.join(", ")),
            ));
        };
        if !given.insert(stream.clone()) {
            return Err(Error::usage(format!(
                "--manifest {stream}=... is given twice"
            )));
        }
        if commit.is_empty() {
            // Its job reported nothing: it did not get as far as pushing.
            continue;
        }
        if !is_full_id(commit) {
            return Err(Error::usage_with_hint(
                format!("--manifest {stream}={commit}: not a full commit id"),
                "give the id its job reported (in GitHub Actions, its output `manifest`)",
            ));
        }
        *slot = Some(Oid::from(commit.to_ascii_lowercase().as_str()));
    }
    Ok(Reported::ByJob(ids))
}

/// What the machines pushed is here, and where the integration starts.
pub struct Fetched {
    /// Held from the fetch to the end of the run.
    pub lock: RunLock,
    /// Where the run's first stage started, as this job knows it (never as a machine says).
    pub first: Option<Oid>,
    /// What this integration starts from: `first`, or the tip of the stage before as its job
    /// reported it.
    pub base: Oid,
}

/// Takes the lock, fetches everything of the run from the remote (and what the jobs reported,
/// by id), finds the base, and checks that the remote's integration branch can take the
/// result before anything is integrated.
pub fn fetch(repo: &Repo, names: &Plan, req: &IntegrateRequest, scope: &Scope) -> Result<Fetched> {
    let state_dir = StateDir::new(repo.common_dir());
    let lock = RunLock::acquire(&state_dir, &names.name, "integrate")?;
    fetch_run(repo, req.remote, &names.name, req.run_id)?;
    if let Reported::ByJob(ids) = &scope.reported {
        let ids: Vec<Oid> = ids.values().flatten().cloned().collect();
        fetch_reported(repo, req.remote, &ids);
    }
    let first = match req.base {
        Some(commit) => Some(repo.resolve_commit(commit).map_err(|_| {
            Error::usage_with_hint(
                format!("`{commit}` is not a commit in this clone"),
                "fetch it first (in GitHub Actions: actions/checkout with `fetch-depth: 0`)",
            )
        })?),
        None => repo.resolve_commit(&names.base).ok(),
    };
    let base = match (req.start, req.stage) {
        (Some(start), Some(k)) => reported_commit(
            repo,
            Some(req.remote),
            start,
            &format!("stage {}'s tip", k - 1),
        )?,
        _ => first.clone().ok_or_else(|| {
            Error::usage_with_hint(
                format!(
                    "`{}` (the plan's base) is not a commit here, so run {} has nothing to start from",
                    names.base, req.run_id
                ),
                "give `--base COMMIT` (the `--base` its machines were given), or fetch the base branch",
            )
        })?,
    };
    // Refused now rather than after the integration: what this clone integrated already counts.
    let run_dir = state_dir.run_dir(&scope.local_id);
    let ours = run_dir
        .state_path()
        .exists()
        .then(|| run_dir.load().ok())
        .flatten()
        .map(|state| state.integration_tip);
    let prev = req.stage.filter(|&k| k > 0).map(|_| &base);
    integration_branch(
        repo,
        req.remote,
        &names.name,
        req.run_id,
        req.stage,
        prev,
        ours.as_ref(),
    )?;
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
    estimates: crate::plan::EstimateUnit,
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
    let run_dir = StateDir::new(repo.common_dir()).run_dir(&scope.local_id);
    let (mut state, journal, interrupted) =
        open_or_start(&repo, &loaded, &text, req, &scope, &base, estimates)?;
    lock.set_run(&scope.local_id, "integrate");
    let plan = session::plan_for_run(full.clone(), Some(&scope.only), true);
    let start = state.base.clone();
    let expect = Expect {
        run_id: req.run_id,
        plan: full,
        plan_hash: &crate::git::text_hash(&text),
        ownership: &ownership,
        start: &start,
        stage: req.stage,
        remote: req.remote,
    };
    // Dependencies first (the run's streams are the plan's, cut down; stages keep plan order).
    let order: Vec<usize> = stages(&plan).into_iter().flatten().collect();
    let before = serde_json::to_string(&state.streams).unwrap_or_default();
    // A stage after the first: what the earlier stages left out holds back what depends on it.
    let earlier = match req.stage {
        Some(k) if k > 0 => {
            let Some(first) = first.as_ref() else {
                return Err(Error::usage_with_hint(
                    format!(
                        "`{}` (the plan's base) is not a commit here, so what stages before {k} integrated cannot be told",
                        names.base
                    ),
                    "give `--base COMMIT` (the `--base` the run's first machines were given)",
                ));
            };
            EarlierStages::read(&repo, full, &scope.only, first, &base)?
        }
        _ => EarlierStages::default(),
    };
    let reported: Vec<Option<Oid>> = plan
        .streams
        .iter()
        .map(|s| {
            scope
                .reported
                .commit(&repo, &full.name, req.run_id, &s.name)
        })
        .collect::<Result<_>>()?;
    let missing = settle(
        &repo,
        &mut state,
        &plan,
        &order,
        &earlier,
        &reported,
        |s, manifest| {
            let in_full = full.stream_index(&plan.streams[s].name).unwrap_or(s);
            evaluate(&repo, &expect, in_full, manifest)
        },
    )?;
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

/// The integration run of `scope.local_id`: as this clone left it (made current again when
/// nothing else runs), or started now from `base`. Returns its state, its journal, and whether
/// it was interrupted.
fn open_or_start(
    repo: &Repo,
    loaded: &LoadedPlan,
    text: &str,
    req: &IntegrateRequest,
    scope: &Scope,
    base: &Oid,
    estimates: crate::plan::EstimateUnit,
) -> Result<(RunState, Journal, bool)> {
    let state_dir = StateDir::new(repo.common_dir());
    let local_id = &scope.local_id;
    let run_dir = &state_dir.run_dir(local_id);
    if !run_dir.state_path().exists() {
        start::check_no_active_run(&state_dir, &loaded.plan.name)?;
        // Forecast like a local run's, of the streams it integrates: each ran on a machine of
        // its own, so as many agents at once as streams.
        let forecast = crate::ops::plan::forecast(
            repo,
            &session::plan_for_run(loaded.plan.clone(), Some(&scope.only), true),
            estimates,
            scope.only.len().max(1),
        );
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
            max_cost: None,
            machines: Some(MachineRun {
                run_id: local_id.clone(),
                only: scope.only.clone(),
                role: Machines::Integrate {
                    remote: req.remote.to_string(),
                    run_id: req.run_id.to_string(),
                    stage: req.stage,
                    missing: Vec::new(),
                    arrived: BTreeMap::new(),
                },
            }),
            forecast,
        })?;
        return Ok((started.state, started.journal, false));
    }
    let state = run_dir.load()?;
    if state.base != *base {
        return Err(Error::state(
            format!(
                "run {local_id} was started here from {}, not from {}",
                short7(&state.base),
                short7(base)
            ),
            "the stage before was integrated again since: integrate this one in a fresh clone (as a CI job does), or remove this run first (`streams clean`)",
        ));
    }
    if !matches!(state_dir.current_run_id().as_deref(), Some(id) if id == local_id) {
        start::check_no_active_run(&state_dir, &loaded.plan.name)?;
        state_dir.set_current(local_id)?;
    }
    match &state.phase {
        RunPhase::Finished => {}
        RunPhase::Running | RunPhase::Interrupted { .. } => {}
        RunPhase::Halted => {
            start::check_no_active_run(&state_dir, &loaded.plan.name)?;
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
