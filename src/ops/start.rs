//! Starting a run: refusing to start over one that is not over, then creating its directory,
//! state, journal and integration branch.

use std::path::Path;

use crate::coordinator::{IntegrationMove, move_integration_ref};
use crate::error::{Error, IoContext, Result};
use crate::exec::dispatcher::worktrees_dir;
use crate::failpoint;
use crate::git::{self, Repo, refs, worktree};
use crate::layout::{self, RefNames};
use crate::plan::Plan;
use crate::state::{
    Entry, Journal, RunDir, RunPhase, RunState, STATE_VERSION, StateDir, StateStore, StreamRecord,
    StreamState, TaskRecord, TaskState, new_run_id, now_ms,
};

/// What a new run starts from.
pub struct NewRun<'a> {
    pub repo: &'a Repo,
    pub plan: &'a Plan,
    pub plan_path: &'a Path,
    pub plan_text: &'a str,
    pub base: &'a str,
    pub jobs: usize,
    pub fail_fast: bool,
}

/// Refuses to start over a run that is not over, saying what to do with it.
pub fn check_no_active_run(state_dir: &StateDir) -> Result<()> {
    let Some((_, state)) = state_dir.current()? else {
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
        RunPhase::Halted(halt) => Err(Error::state(
            format!(
                "run {} of plan `{}` is halted on a conflict in stream `{}`",
                state.run_id, state.plan_name, state.streams[halt.unit.stream].name
            ),
            crate::report::hints::halted(
                &state.streams[halt.unit.stream].name,
                Some(&halt.resolution_worktree),
                true,
            ),
        )),
        RunPhase::Finished | RunPhase::Aborted { .. } => Ok(()),
    }
}

/// Creates the run: its directory, state, journal, and the integration branch at `base`.
/// Whatever earlier runs left on this plan's branches that `base` does not contain is kept under
/// `RefNames::previous`.
pub fn start_run(new: &NewRun) -> Result<(RunDir, RunState, Journal)> {
    let (repo, plan) = (new.repo, new.plan);
    // A run moves the plan's branches: none may be checked out where a person works on it.
    let own_prefix = layout::plan_branches(&plan.name);
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
    let state_dir = StateDir::new(repo.common_dir());
    let run_id = new_run_id();
    let run_dir = state_dir.run_dir(&run_id);
    run_dir.create()?;
    std::fs::write(run_dir.plan_copy_path(), new.plan_text)
        .context(|| format!("could not write {}", run_dir.plan_copy_path().display()))?;
    // Prompt files are copied now: the run must not depend on the checkout staying as it is.
    let plan_dir = new.plan_path.parent().unwrap_or(Path::new("."));
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

    let refs = RefNames::new(&plan.name);
    let mut kept = Vec::new();
    for (name, oid) in refs::refs_under(repo, &layout::plan_branches(&plan.name))? {
        if !git::refs::is_ancestor(repo, &oid, new.base)? {
            let short_name = layout::plan_branch_name(&plan.name, &name).unwrap_or(&name);
            kept.push((refs.previous(&run_id, short_name), oid));
        }
    }
    refs::set_refs(repo, &kept, "streams: kept from an earlier run")?;
    let integration_ref = layout::integration_ref(&plan.name);
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
            .map(|s| StreamRecord {
                name: s.name.clone(),
                branch: layout::stream_branch(&plan.name, &s.name),
                worktree: wt_dir.join(&s.name),
                depends_on: s.depends_on.clone(),
                state: StreamState::Pending,
                notes: Vec::new(),
                tasks: s
                    .tasks
                    .iter()
                    .map(|t| TaskRecord {
                        summary: t.prompt.summary(),
                        state: TaskState::Pending,
                        attempts: 0,
                        agent_ms: 0,
                    })
                    .collect(),
            })
            .collect(),
        queue: Vec::new(),
        timeline: Vec::new(),
    };
    // The pointer first (without a state file it names no run: nothing was touched yet), then
    // the state, then the ref: a crash between the last two is repaired by `resume`.
    state_dir.set_current(&run_id)?;
    StateStore::new(run_dir.clone()).create(&state)?;
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
    Ok((run_dir, state, journal))
}
