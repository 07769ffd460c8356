//! Starting a run: refusing to start over one of the same plan that is not over, or beside a
//! plan whose ownership overlaps (the register of running plans), then creating its directory,
//! state, journal and integration branch.

use std::path::{Path, PathBuf};

use crate::coordinator::{IntegrationMove, move_integration_ref};
use crate::error::{Error, IoContext, Result};
use crate::exec::dispatcher::worktrees_dir;
use crate::failpoint;
use crate::git::{self, Repo, refs, worktree};
use crate::ids::Oid;
use crate::layout::{self, RefNames};
use crate::plan::Plan;
use crate::state::{
    Entry, Journal, RegisterLock, RunDir, RunLock, RunPhase, RunState, STATE_VERSION, StateDir,
    StateStore, StreamRecord, new_run_id, now_ms, register,
};

use super::load::LoadedPlan;
use super::session::EngineParts;

/// What a new run starts from.
pub struct NewRun<'a> {
    pub repo: &'a Repo,
    pub plan: &'a Plan,
    pub plan_path: &'a Path,
    pub plan_text: &'a str,
    pub base: &'a str,
    pub jobs: usize,
    pub fail_fast: bool,
    /// Start over even when the last run's result is merged nowhere (it is kept, not lost).
    pub restart: bool,
    /// `--no-check` / `--no-gate`.
    pub no_check: bool,
    pub no_gate: bool,
    /// `--max-cost` (see [`crate::state::BudgetOverrides`]).
    pub max_cost: Option<f64>,
    /// A run spread over machines: the run id its caller chose, the streams this run covers
    /// and its role (see [`crate::state::Machines`]). `None` for an ordinary run.
    pub machines: Option<MachineRun>,
    /// What `streams plan` forecasts for the run (see [`crate::ops::plan::forecast`]), kept in
    /// its state for the report.
    pub forecast: Option<crate::state::RunForecast>,
}

/// What a run on one of several machines (or their central integration) adds to a new run.
pub struct MachineRun {
    pub run_id: String,
    pub only: Vec<String>,
    pub role: crate::state::Machines,
}

/// A run that has started, and what it kept of the last run's branches.
pub struct Started {
    pub run_dir: RunDir,
    pub state: RunState,
    pub journal: Journal,
    pub last: LastResult,
}

/// What the last run of the plan left on its branches, as a new run found it.
#[derive(Debug, Default)]
pub struct LastResult {
    /// The integration branch's tip, when it has commits `base` does not.
    pub tip: Option<Oid>,
    /// A branch of the user's that holds that tip (it was merged).
    pub merged_into: Option<String>,
    /// The refs that keep what is on no other branch (one per commit).
    pub kept: Vec<(String, Oid)>,
    /// A run stopped as it started, before it saved its state ([`StateDir::stillborn`]): this
    /// run starts in its place.
    pub stillborn: Option<String>,
}

/// A branch outside the plan's own namespace whose history holds `oid`, if any: work there is
/// the user's and loses nothing when the plan's branches move.
pub fn users_branch_containing(repo: &Repo, plan: &str, oid: &str) -> Result<Option<String>> {
    let own = layout::plan_branches(plan);
    Ok(refs::branches_containing(repo, oid)?
        .into_iter()
        .find(|r| !r.starts_with(&own))
        .map(|r| layout::short_branch(&r).to_string()))
}

/// What a new run from `base` would move aside: the integration tip (and where it was merged, if
/// it was), and every plan branch with work found nowhere else, one ref per
/// commit (a commit some kept ref already holds, or that the kept integration tip holds, is not
/// kept again). Changes nothing.
fn last_result(repo: &Repo, plan: &str, base: &str, keep_as: &str) -> Result<LastResult> {
    let refs = RefNames::new(plan);
    let integration_ref = layout::integration_ref(plan);
    let mut last = LastResult::default();
    if let Some(tip) = repo.ref_target(&integration_ref)?
        && tip != base
    {
        last.merged_into = if git::refs::is_ancestor(repo, &tip, base)? {
            Some("the plan's base".to_string())
        } else {
            users_branch_containing(repo, plan, &tip)?
        };
        last.tip = Some(tip);
    }
    let mut held: std::collections::BTreeSet<Oid> =
        refs::refs_under(repo, &layout::kept_refs(plan))?
            .into_iter()
            .map(|(_, oid)| oid)
            .collect();
    // The integration branch first: a stream whose work it holds needs no ref of its own.
    let mut branches = refs::refs_under(repo, &layout::plan_branches(plan))?;
    branches.sort_by_key(|(name, _)| *name != integration_ref);
    // The work `base` does not hold, and of it what the user's branches hold: one walk in
    // process, not a `git for-each-ref --contains` per branch.
    let mut beyond_base = std::collections::BTreeSet::new();
    for (_, oid) in &branches {
        if !git::refs::is_ancestor(repo, oid, base)? {
            beyond_base.insert(oid.clone());
        }
    }
    let on_users = refs::on_branches(repo, &layout::plan_branches(plan), base, &beyond_base)?;
    for (name, oid) in branches {
        if held.contains(&oid) || !beyond_base.contains(&oid) || on_users.contains(&oid) {
            continue;
        }
        if let Some(tip) = &last.tip
            && name != integration_ref
            && git::refs::is_ancestor(repo, &oid, tip)?
        {
            continue;
        }
        let short_name = layout::plan_branch_name(plan, &name).unwrap_or(&name);
        last.kept
            .push((refs.previous(keep_as, short_name), oid.clone()));
        held.insert(oid);
    }
    Ok(last)
}

/// `streams run`'s choices for a new run.
pub struct RunOptions {
    pub jobs: usize,
    pub fail_fast: bool,
    pub restart: bool,
    pub no_check: bool,
    pub no_gate: bool,
    /// `--max-cost`: the most the run may spend in US dollars, on top of the plan's budget.
    pub max_cost: Option<f64>,
    /// How the plan's estimates read (for the forecast the run starts with).
    pub estimates: crate::plan::EstimateUnit,
}

/// What the sandbox says before a run starts: warnings (`auto` runs unconfined here), or an
/// error when the plan asks for a sandbox this kernel cannot give.
pub fn sandbox_preflight(plan: &Plan) -> Result<Vec<String>> {
    crate::exec::sandbox::preflight(plan)
}

/// A new run of `loaded` on this machine (`streams run`): under the lock, refused over a run
/// that is not over. Returns its engine's parts, what it kept of the last run's branches (for
/// the message), and the lock, to hold for as long as the engine runs.
pub fn start_local(
    repo: Repo,
    loaded: LoadedPlan,
    options: RunOptions,
) -> Result<(EngineParts, LastResult, RunLock)> {
    let state_dir = StateDir::new(repo.common_dir());
    let mut lock = RunLock::acquire(&state_dir, &loaded.plan.name, "run")?;
    check_no_active_run(&state_dir, &loaded.plan.name)?;
    let stillborn = state_dir.stillborn(Some(&loaded.plan.name));
    let text = std::fs::read_to_string(&loaded.path)
        .context(|| format!("could not read {}", loaded.path.display()))?;
    let started = start_run(&NewRun {
        repo: &repo,
        plan: &loaded.plan,
        plan_path: &loaded.path,
        plan_text: &text,
        base: &loaded.base_commit,
        jobs: options.jobs,
        fail_fast: options.fail_fast,
        restart: options.restart,
        no_check: options.no_check,
        no_gate: options.no_gate,
        max_cost: options.max_cost,
        machines: None,
        forecast: crate::ops::plan::forecast(&repo, &loaded.plan, options.estimates, options.jobs),
    })?;
    lock.set_run(&started.state.run_id, "run");
    let mut last = started.last;
    last.stillborn = stillborn;
    let parts = EngineParts {
        repo,
        plan: loaded.plan,
        run_dir: started.run_dir,
        state: started.state,
        journal: started.journal,
    };
    Ok((parts, last, lock))
}

/// A run moves the plan's branches: none may be checked out where a person works on it.
fn refuse_checked_out_branches(repo: &Repo, plan: &str) -> Result<()> {
    let own_prefix = layout::plan_branches(plan);
    for checkout in worktree::list(repo)? {
        if let Some(branch) = &checkout.branch
            && branch.starts_with(&own_prefix)
            && !checkout.is_streams(repo.common_dir())
        {
            let short_branch = crate::layout::short_branch(branch);
            return Err(Error::usage_with_hint(
                format!(
                    "{short_branch} is checked out in {}; a run moves that branch, so it would change under you",
                    checkout.path.display()
                ),
                format!(
                    "switch that checkout to another branch first (`git -C {} switch -`)",
                    crate::report::shell_quote(&checkout.path.display().to_string())
                ),
            ));
        }
    }
    Ok(())
}

/// Copies the plan's prompt files into the run's directory now: the run must not depend on
/// the checkout staying as it is.
pub(crate) fn copy_prompt_files(plan: &Plan, plan_path: &Path, run_dir: &RunDir) -> Result<()> {
    let plan_dir = plan_path.parent().unwrap_or(Path::new("."));
    for stream in &plan.streams {
        for (t, task) in stream.tasks.iter().enumerate() {
            if let crate::plan::Prompt::File(file) = &task.prompt {
                let from = plan_dir.join(file);
                let to = run_dir.prompt_source_path(&stream.name, t);
                std::fs::create_dir_all(to.parent().unwrap_or(run_dir.path()))
                    .and_then(|()| std::fs::copy(&from, &to).map(|_| ()))
                    .context(|| format!("could not copy the prompt file {}", from.display()))?;
            }
        }
    }
    Ok(())
}

/// Refuses to start over a run of plan `plan` that is not over, saying what to do with it.
pub fn check_no_active_run(state_dir: &StateDir, plan: &str) -> Result<()> {
    let Some((_, state)) = state_dir.last_of_plan(plan) else {
        return Ok(());
    };
    match &state.phase {
        RunPhase::Running | RunPhase::Interrupted { .. } => Err(Error::state(
            format!(
                "run {} of plan `{}` was interrupted and has not finished",
                state.run_id, state.plan_name
            ),
            crate::report::hints::INTERRUPTED_BEFORE_RUN,
        )),
        RunPhase::Halted => Err(Error::state(
            format!(
                "run {} of plan `{}` is halted: {}",
                state.run_id,
                state.plan_name,
                crate::report::hints::parked_list(&state)
            ),
            crate::report::hints::halted(&state, true),
        )),
        RunPhase::Finished | RunPhase::Aborted { .. } => Ok(()),
    }
}

/// Refuses (exit 5) a run of `plan` whose patterns overlap those of a plan in the register of
/// running plans (see [`register`]), naming every overlapping pair and which plan and run
/// hold them. The caller holds the [`RegisterLock`] until its run's state is saved.
pub fn check_register(state_dir: &StateDir, plan: &Plan) -> Result<()> {
    let mine = register::claims(plan);
    let mut held = Vec::new();
    let mut held_plans = Vec::new();
    let mut lines = Vec::new();
    for holding in register::holdings(state_dir, &plan.name) {
        let found = register::overlaps(&mine, &holding);
        if found.is_empty() {
            continue;
        }
        let who = match &holding.holder {
            Some(h) => format!(", `streams {}` pid {} on {}", h.command, h.pid, h.host),
            None => String::new(),
        };
        held.push(format!(
            "plan `{}` (run {}, {}{who})",
            holding.plan, holding.run_id, holding.phase
        ));
        held_plans.push(format!("`streams abort --plan {}`", holding.plan));
        for o in found {
            lines.push(format!(
                "  `{}` ({} of `{}`) and `{}` ({} of `{}`) could both match {}",
                o.mine.text,
                o.mine.by,
                plan.name,
                o.theirs.text,
                o.theirs.by,
                holding.plan,
                crate::text::quote_path(&o.example)
            ));
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    Err(Error::state(
        format!(
            "plan `{}` overlaps what {} holds:\n{}",
            plan.name,
            held.join(" and "),
            lines.join("\n")
        ),
        format!(
            "plans run side by side only when no pattern of one can match a path of the other: wait for that run to end (or stop it: {}), or give the plans disjoint `owns` and `shared`",
            held_plans.join(", ")
        ),
    ))
}

/// Creates the run: its directory, state, journal, and the integration branch at `base`.
/// Whatever earlier runs left on this plan's branches that `base` does not contain is kept under
/// `RefNames::previous`.
pub fn start_run(new: &NewRun) -> Result<Started> {
    let (repo, plan) = (new.repo, new.plan);
    refuse_checked_out_branches(repo, &plan.name)?;
    let state_dir = StateDir::new(repo.common_dir());
    // Held until the run's state is saved: the check and the joining are one step.
    let register = RegisterLock::acquire(&state_dir)?;
    let run_id = match &new.machines {
        Some(m) => m.run_id.clone(),
        None => new_run_id(),
    };
    // The plan as this run sees it: only its streams, synced once per stream.
    let full_plan = plan;
    let cut;
    let plan = match &new.machines {
        Some(m) => {
            cut = crate::ops::session::plan_for_run(full_plan.clone(), Some(&m.only), true);
            &cut
        }
        None => plan,
    };
    // What the last run left is kept under its own id (the run that made it).
    let last_id = state_dir
        .last_of_plan(&plan.name)
        .map(|(_, state)| state.run_id)
        .unwrap_or_else(|| run_id.clone());
    let last = last_result(repo, &plan.name, new.base, &last_id)?;
    if let (Some(tip), None, false) = (&last.tip, &last.merged_into, new.restart) {
        let (message, hint) = crate::report::hints::unmerged_result(&plan.name, tip);
        return Err(Error::state(message, hint));
    }
    check_register(&state_dir, plan)?;
    let run_dir = state_dir.run_dir(&run_id);
    run_dir.create()?;
    std::fs::write(run_dir.plan_copy_path(), new.plan_text)
        .context(|| format!("could not write {}", run_dir.plan_copy_path().display()))?;
    copy_prompt_files(full_plan, new.plan_path, &run_dir)?;
    let journal = Journal::open(&run_dir.journal_path()).context(|| {
        format!(
            "could not open the journal {}",
            run_dir.journal_path().display()
        )
    })?;
    let _ = journal.append(Entry::RunStarted {
        run_id: run_id.clone(),
        base: new.base.to_string(),
    });
    failpoint::hit("run-dir-created");

    refs::set_refs(repo, &last.kept, "streams: kept from an earlier run")?;
    // A machine running one stream integrates it on a ref of its own: nothing a person sees.
    let integration_ref = match &new.machines {
        Some(MachineRun {
            role: crate::state::Machines::Stream { .. },
            ..
        }) => RefNames::new(&plan.name).machine_integration(&run_id),
        _ => layout::integration_ref(&plan.name),
    };
    let integration_before = repo.ref_target(&integration_ref)?;
    let wt_dir = worktrees_dir(repo, plan);
    let now = now_ms();
    let state = RunState {
        version: STATE_VERSION,
        run_id: run_id.clone(),
        plan_name: plan.name.clone(),
        plan_path: new.plan_path.to_path_buf(),
        plan_hash: Some(crate::git::text_hash(new.plan_text)),
        repo_root: repo.root().to_path_buf(),
        base_rev: plan.base.clone(),
        base: new.base.into(),
        integration_ref: integration_ref.clone(),
        integration_before: integration_before.clone(),
        integration_tip: new.base.into(),
        jobs: new.jobs,
        fail_fast: new.fail_fast,
        started_at: now,
        updated_at: now,
        previous_wall_ms: 0,
        session_started_at: now,
        phase: RunPhase::Running,
        streams: plan
            .streams
            .iter()
            .map(|s| {
                StreamRecord::pending(
                    s.name.clone(),
                    layout::stream_branch(&plan.name, &s.name),
                    workspace_path(repo, plan, &wt_dir, &s.name),
                    s.depends_on.clone(),
                    s.tasks.iter().map(|t| t.prompt.summary()),
                )
            })
            .collect(),
        queue: Vec::new(),
        no_check: new.no_check,
        no_gate: new.no_gate,
        only: new.machines.as_ref().map(|m| m.only.clone()),
        machines: new.machines.as_ref().map(|m| m.role.clone()),
        checks: Vec::new(),
        gates: Vec::new(),
        bisections: Vec::new(),
        flaky: Vec::new(),
        integrations: Vec::new(),
        timeline: Vec::new(),
        merged: None,
        retries: Vec::new(),
        budget_overrides: crate::state::BudgetOverrides {
            max_cost: new.max_cost,
            raises: Vec::new(),
        },
        budget_warnings: Vec::new(),
        forecast: new.forecast.clone(),
    };
    // The pointer first (without a state file it names no run: nothing was touched yet), then
    // the state, then the ref: a crash between the last two is repaired by `resume`.
    state_dir.set_current(&run_id)?;
    failpoint::hit("run-current-set");
    StateStore::new(run_dir.clone()).create(&state)?;
    drop(register);
    failpoint::hit("run-saved");
    move_integration_ref(
        repo,
        None,
        &integration_ref,
        integration_before.as_deref(),
        Some(new.base),
        IntegrationMove::Other("streams: start run"),
    )?;
    failpoint::hit("integration-created");
    Ok(Started {
        run_dir,
        state,
        journal,
        last,
    })
}

/// Where stream `name`'s workspace goes: in `wt_dir`. One an earlier version of streams left
/// under `.git/streams/worktrees` (a private repository) is moved there, so that its files are
/// reused; when it cannot be moved, it is used where it is.
fn workspace_path(repo: &Repo, plan: &Plan, wt_dir: &Path, name: &str) -> PathBuf {
    let path = wt_dir.join(name);
    let legacy = layout::legacy_worktrees_dir(repo.common_dir(), &plan.name).join(name);
    if plan.worktree_root.is_some() || path.exists() || !legacy.join(".git").is_dir() {
        return path;
    }
    match std::fs::create_dir_all(wt_dir).and_then(|()| std::fs::rename(&legacy, &path)) {
        Ok(()) => {
            tracing::debug!(
                "moved the workspace {} to {}",
                legacy.display(),
                path.display()
            );
            path
        }
        Err(e) => {
            tracing::debug!("could not move the workspace {}: {e}", legacy.display());
            legacy
        }
    }
}
