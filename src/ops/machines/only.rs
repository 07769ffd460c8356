//! `streams run --only STREAM`: one stream of a run spread over machines, on this machine, in
//! the steps the command takes (the plan's warnings are shown between them): where the stream
//! starts ([`machine_start`]), what to warn about ([`preflight`]), then the run itself
//! ([`start_machine_run`]): new, or the same command again after it finished.

use crate::error::{Error, IoContext, Result};
use crate::git::Repo;
use crate::ids::Oid;
use crate::ops::load::LoadedPlan;
use crate::ops::session::{self, EngineParts};
use crate::ops::start::{self, MachineRun, NewRun};
use crate::plan::{Plan, SyncPoint};
use crate::state::{Machines, RunDir, RunLock, RunState, StateDir};

use super::{StartAt, check_remote, only_stream, stream_start};

/// What `run --only` was asked.
pub struct OnlyRequest<'a> {
    pub stream: &'a str,
    pub run_id: &'a str,
    /// `--base`: the commit a stream with no dependencies starts from.
    pub base: Option<&'a str>,
    /// `--after-stage K`: start after stage K, from its integration tip `start`.
    pub after_stage: Option<usize>,
    /// `--start`: the tip stage K's integrate job reported.
    pub start: Option<&'a str>,
    pub push: Option<&'a str>,
}

/// The commit the stream starts from, read from `names` (the plan without the repository);
/// with `--push`, the remote is checked to be reachable first, unless this clone ran the run
/// already (the same command again pushes what it left).
pub fn machine_start(repo: &Repo, names: &Plan, req: &OnlyRequest) -> Result<Oid> {
    let s = only_stream(names, req.stream)?;
    let at = StartAt {
        base: req.base,
        after_stage: req.after_stage,
        start: req.start,
    };
    let start = stream_start(repo, names, req.run_id, s, &at, req.push)?;
    if let Some(remote) = req.push
        && !state_dir_has_run(repo, req.run_id)
    {
        check_remote(repo, remote, &names.name, req.run_id)?;
    }
    Ok(start)
}

/// What to warn about before the stream runs: the sandbox, and a `sync = "task"` that cannot
/// hold on a machine (the engine runs it with `sync = "stream"`, see `ops::session`; a person
/// reading the log should not have to know that).
pub fn preflight(plan: &Plan, stream: &str) -> Result<Vec<String>> {
    let mut warnings = start::sandbox_preflight(plan)?;
    if plan.sync == SyncPoint::Task {
        warnings.push(format!(
            "the plan's `sync = \"task\"` does not hold on a machine: stream `{stream}`'s commits are integrated together, by `streams integrate`, once it is done"
        ));
    }
    Ok(warnings)
}

/// `run --only`'s choices for the run.
pub struct OnlyOptions {
    pub jobs: Option<usize>,
    pub fail_fast: bool,
    pub no_check: bool,
    /// How the plan's estimates read (for the forecast the run starts with).
    pub estimates: crate::plan::EstimateUnit,
}

/// What [`start_machine_run`] found.
pub enum MachineRunStart {
    /// A new run of the stream: its engine's parts, and the lock to hold while it runs.
    New(Box<EngineParts>, RunLock),
    /// The run finished on this machine already: it is pushed again (a push that failed, say),
    /// nothing is run twice (under the lock, as a new run would be).
    Finished(Box<RunState>, RunDir, RunLock),
}

/// Starts the machine's run of the stream from `start`, under the lock; or finds it finished
/// already. A run of the same id that did not finish here is refused (`resume` goes on).
pub fn start_machine_run(
    repo: Repo,
    loaded: LoadedPlan,
    names: &Plan,
    req: &OnlyRequest,
    start: Oid,
    options: OnlyOptions,
) -> Result<MachineRunStart> {
    let state_dir = StateDir::new(repo.common_dir());
    let mut lock = RunLock::acquire(&state_dir, &names.name, "run")?;
    let run_dir = state_dir.run_dir(req.run_id);
    if run_dir.state_path().exists() {
        let state = run_dir.load()?;
        if !state.phase.is_over() {
            return Err(Error::state(
                format!("run {} did not finish on this machine", req.run_id),
                "`streams resume` goes on with it, and pushes when it ends",
            ));
        }
        return Ok(MachineRunStart::Finished(Box::new(state), run_dir, lock));
    }
    start::check_no_active_run(&state_dir, &names.name)?;
    let text = std::fs::read_to_string(&loaded.path)
        .context(|| format!("could not read {}", loaded.path.display()))?;
    let base = match req.base {
        Some(_) => start.clone(),
        None => repo.resolve_commit(&names.base).unwrap_or(start.clone()),
    };
    let only = vec![req.stream.to_string()];
    let jobs = options.jobs.or(loaded.plan.jobs).unwrap_or(1).max(1);
    // Forecast like a local run's, of the one stream this machine runs.
    let forecast = crate::ops::plan::forecast(
        &repo,
        &session::plan_for_run(loaded.plan.clone(), Some(&only), true),
        options.estimates,
        jobs,
    );
    let started = start::start_run(&NewRun {
        repo: &repo,
        plan: &loaded.plan,
        plan_path: &loaded.path,
        plan_text: &text,
        base: &start,
        jobs,
        fail_fast: options.fail_fast,
        // A machine's clone holds no result of a person's to keep apart.
        restart: true,
        no_check: options.no_check,
        // The gate runs on the integration, centrally.
        no_gate: true,
        max_cost: None,
        machines: Some(MachineRun {
            run_id: req.run_id.to_string(),
            only: only.clone(),
            role: Machines::Stream {
                stream: req.stream.to_string(),
                push: req.push.map(str::to_string),
                after_stage: req.after_stage,
                base,
            },
        }),
        forecast,
    })?;
    lock.set_run(req.run_id, "run");
    let plan = session::plan_for_run(loaded.plan, Some(&only), true);
    let parts = EngineParts {
        repo,
        plan,
        run_dir: started.run_dir,
        state: started.state,
        journal: started.journal,
    };
    Ok(MachineRunStart::New(Box::new(parts), lock))
}

/// Whether this clone has run `run_id` already (the same command again pushes what it left).
fn state_dir_has_run(repo: &Repo, run_id: &str) -> bool {
    StateDir::new(repo.common_dir())
        .run_dir(run_id)
        .state_path()
        .exists()
}
