//! Starting a run, and the housekeeping around runs: finding an agent left running by a dead
//! coordinator, clearing git lock files a crash left behind, aborting, cleaning up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::dispatcher::worktrees_dir;
use crate::coordinator::{IntegrationMove, move_integration_ref, short};
use crate::error::{Error, IoContext, Result};
use crate::failpoint;
use crate::git::changes::keep_work;
use crate::git::locks::LockPlace;
use crate::git::{self, Oid, Repo, commit, merge, refs, worktree};
use crate::layout::{self, KeptKind, RefNames};
use crate::plan::Plan;
use crate::state::{
    Entry, Journal, RunDir, RunPhase, RunState, STATE_VERSION, StateDir, StreamRecord, StreamState,
    TaskRecord, TaskState, new_run_id, now_ms,
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
            "run `streams resume` to finish it, or `streams abort` to stop it (nothing is lost either way)",
        )),
        RunPhase::Halted(halt) => Err(Error::state(
            format!(
                "run {} of plan `{}` is halted on a conflict in stream `{}`",
                state.run_id, state.plan_name, state.streams[halt.unit.stream].name
            ),
            format!(
                "resolve it in {} and run `streams continue`, or `streams skip {}`, or `streams abort`",
                halt.resolution_worktree.display(),
                state.streams[halt.unit.stream].name
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
    };
    // The pointer first (without a state file it names no run: nothing was touched yet), then
    // the state, then the ref: a crash between the last two is repaired by `resume`.
    state_dir.set_current(&run_id)?;
    run_dir.save(&state)?;
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

/// What is left running of a run, to stop before touching its worktrees.
pub enum RunProcesses {
    /// Processes whose environment says they belong to the run: agents and everything they
    /// started, those that left their agent's process group included.
    Verified(Vec<i32>),
    /// Without /proc (not Linux) nothing can be checked: the process groups the run recorded,
    /// those still alive.
    Groups(BTreeSet<i32>),
}

impl RunProcesses {
    pub fn len(&self) -> usize {
        match self {
            RunProcesses::Verified(pids) => pids.len(),
            RunProcesses::Groups(groups) => groups.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Finds what is left of a run. A recorded process group is never trusted on its own where it
/// can be checked: after a reboot, or once process ids wrap, it may be anyone's.
pub fn run_processes(run_id: &str, recorded_groups: &BTreeSet<i32>) -> RunProcesses {
    if Path::new("/proc/self/environ").exists() {
        RunProcesses::Verified(super::process::processes_with_env(&[format!(
            "STREAMS_RUN_ID={run_id}"
        )]))
    } else {
        RunProcesses::Groups(
            recorded_groups
                .iter()
                .copied()
                .filter(|&g| super::process::group_alive(g))
                .collect(),
        )
    }
}

/// SIGTERM, up to `grace` to exit, then SIGKILL.
pub async fn stop_run_processes(processes: &RunProcesses, grace: Duration) {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::Pid;
    let signal_all = |signal: Signal| match processes {
        RunProcesses::Verified(pids) => pids.iter().for_each(|&p| {
            let _ = kill(Pid::from_raw(p), signal);
        }),
        RunProcesses::Groups(groups) => groups.iter().for_each(|&g| {
            let _ = killpg(Pid::from_raw(g), signal);
        }),
    };
    let alive = || match processes {
        // A zombie is already dead; only its parent can reap it.
        RunProcesses::Verified(pids) => pids.iter().any(|&p| {
            kill(Pid::from_raw(p), None).is_ok()
                && !std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .is_ok_and(|s| s.contains(") Z "))
        }),
        RunProcesses::Groups(groups) => groups.iter().any(|&g| super::process::group_alive(g)),
    };
    if processes.is_empty() {
        return;
    }
    signal_all(Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    // These are not our children: there is nothing to wait on but their disappearance.
    while alive() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_all(Signal::SIGKILL);
}

/// Removes git lock files that a killed git left in this run's worktrees and on this plan's
/// refs (streams holds the repository lock, so no other streams process is using them). Lock
/// files anywhere else belong to someone else's git: they are reported, never deleted.
pub fn clear_stale_locks(repo: &Repo, state: &RunState) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let ours_wt: BTreeSet<PathBuf> = state.streams.iter().map(|s| s.worktree.clone()).collect();
    // A stream's workspace is a repository of streams' own: every lock file in its git dir is
    // a killed git's.
    for path in ours_wt.iter().flat_map(|wt| git::locks::in_workspace(wt)) {
        std::fs::remove_file(&path).context(|| format!("could not remove {}", path.display()))?;
        notes.push(format!(
            "removed a stale git lock file left by the crash: {}",
            path.display()
        ));
    }
    let is_ours = |wt: &Path| ours_wt.contains(wt) || layout::is_resolution_worktree(wt);
    let ref_dirs = layout::loose_ref_dirs(repo.common_dir(), &state.plan_name);
    for lock in git::locks::find(repo.common_dir(), is_ours, &ref_dirs) {
        let path = &lock.path;
        if lock.ours {
            std::fs::remove_file(path)
                .context(|| format!("could not remove {}", path.display()))?;
            notes.push(format!(
                "removed a stale git lock file left by the crash: {}",
                path.display()
            ));
        } else if lock.place == LockPlace::Common {
            notes.push(format!(
                "warning: {} exists (not streams'); if no git command is running, remove it",
                path.display()
            ));
        } else {
            notes.push(format!(
                "warning: {} exists; if no git command is running there, remove it",
                path.display()
            ));
        }
    }
    Ok(notes)
}

/// What `abort` kept, for its message.
pub struct Aborted {
    pub kept: Vec<(String, Oid)>,
    pub integration_restored: Option<Oid>,
}

/// Stops a run for good: the integration ref goes back to where the run found it, every stream
/// branch and every piece of unintegrated work stays reachable under
/// `RefNames::aborted`, and the run's worktrees are unlocked.
pub async fn abort(
    repo: &Repo,
    run_dir: &RunDir,
    state: &mut RunState,
    journal: &Journal,
) -> Result<Aborted> {
    let refs = RefNames::new(&state.plan_name);
    let run_id = state.run_id.clone();
    let mut kept = Vec::new();

    // Nothing of the run may keep running.
    let mut groups = BTreeSet::new();
    for s in &state.streams {
        for t in &s.tasks {
            if let TaskState::Running {
                pgid: Some(pgid), ..
            } = t.state
            {
                groups.insert(pgid);
            }
        }
    }
    let processes = run_processes(&run_id, &groups);
    stop_run_processes(&processes, Duration::from_secs(5)).await;

    for s in &state.streams {
        if let Some(tip) = repo.ref_target(&s.branch)?
            && tip != state.base
        {
            let name = refs.aborted(&run_id, &format!("branches/{}", s.name));
            let name = refs::keep_ref(repo, &name, &tip, "streams abort: stream branch")?;
            kept.push((name, tip));
        }
        if s.worktree.join(".git").exists() {
            // A private workspace may hold commits its agent made that streams has not
            // brought over yet: keep everything beyond the stream branch (or HEAD for an
            // earlier version's linked worktree, whose commits are the user's already).
            let head = if git::workspace::is_workspace(&s.worktree) {
                repo.ref_target(&s.branch)?
                    .unwrap_or_else(|| state.base.clone())
            } else {
                git::changes::head_of(&s.worktree).unwrap_or_default()
            };
            let name = refs.aborted(&run_id, &format!("uncommitted/{}", s.name));
            if !head.is_empty()
                && let Ok(Some((name, commit))) = keep_work(
                    repo,
                    &s.worktree,
                    &head,
                    None,
                    &name,
                    "streams abort: uncommitted work",
                )
            {
                kept.push((name, commit));
            }
            let _ = worktree::unlock(repo, &s.worktree);
        }
    }
    if let RunPhase::Halted(halt) = &state.phase {
        let name = refs.aborted(&run_id, "resolution");
        if halt.resolution_worktree.join(".git").exists() {
            if let Ok(Some((name, commit))) = keep_work(
                repo,
                &halt.resolution_worktree,
                &halt.ours,
                None,
                &name,
                "streams abort: resolution",
            ) {
                kept.push((name, commit));
            }
            worktree::remove(repo, &halt.resolution_worktree)?;
        }
    }
    let current = repo.ref_target(&state.integration_ref)?;
    if let Some(current) = &current
        && Some(current) != state.integration_before.as_ref()
        && current != &state.base
    {
        let name = refs.aborted(&run_id, "integration");
        let name = refs::keep_ref(repo, &name, current, "streams abort: integration branch")?;
        kept.push((name, current.clone()));
    }
    let back_to = state.integration_before.as_deref();
    if let Some(cur) = &current
        && Some(cur.as_str()) != back_to
    {
        move_integration_ref(
            repo,
            None,
            &state.integration_ref,
            Some(cur),
            back_to,
            IntegrationMove::Other("streams abort"),
        )?;
    }
    state.phase = RunPhase::Aborted { at: now_ms() };
    let _ = journal.append(Entry::Aborted);
    run_dir.save(state)?;
    Ok(Aborted {
        kept,
        integration_restored: state.integration_before.clone(),
    })
}

/// One thing `clean` looked at.
#[derive(Debug)]
pub struct CleanItem {
    pub what: String,
    /// Why it would lose work, if it would.
    pub loses: Option<String>,
    action: CleanAction,
}

#[derive(Debug)]
enum CleanAction {
    Worktree(PathBuf),
    Ref(String),
    /// The integration branch: it moves (here, goes) only through the coordinator.
    IntegrationRef(String),
    RunDir(PathBuf),
}

/// What `clean` would remove for the last run (and older runs' leftovers of its plan).
pub fn clean_plan(repo: &Repo, state: &RunState) -> Result<Vec<CleanItem>> {
    let mut items = Vec::new();
    let plan = &state.plan_name;
    let integration_tip = repo.ref_target(&state.integration_ref)?;
    // Worktrees of this plan: the streams', and a leftover resolution worktree.
    let mut worktrees: Vec<PathBuf> = state.streams.iter().map(|s| s.worktree.clone()).collect();
    if let Some(parent) = state.streams.first().and_then(|s| s.worktree.parent()) {
        worktrees.push(layout::resolution_worktree(parent));
    }
    let registered = worktree::list(repo)?;
    let mut dirty_streams = BTreeSet::new();
    for path in worktrees {
        if !registered.iter().any(|w| w.path == path) && !path.exists() {
            continue;
        }
        let dirty = path.exists()
            && git::changes::dirty_paths(&path)
                .map(|d| !d.is_empty())
                .unwrap_or(false);
        let unbrought = git::workspace::unbrought_head(repo, &path);
        if (dirty || unbrought.is_some())
            && let Some(name) = path.file_name()
        {
            dirty_streams.insert(name.to_string_lossy().into_owned());
        }
        let loses = match (dirty, unbrought) {
            (true, _) => Some("uncommitted changes in it".to_string()),
            (false, Some(head)) => Some(format!(
                "commits made in it that your repository does not have ({})",
                crate::coordinator::short(&head)
            )),
            (false, None) => None,
        };
        items.push(CleanItem {
            what: format!("worktree {}", path.display()),
            loses,
            action: CleanAction::Worktree(path),
        });
    }

    let branches = refs::refs_under(repo, &layout::plan_branches(plan))?;
    let kept = refs::refs_under(repo, &layout::kept_refs(plan))?;
    // Whether a ref's work is on the integration branch is decided by content, not by what the
    // run recorded: a commit made in a worktree after the run is work too. It is if merging it
    // into the integration branch would change nothing.
    let candidates: Vec<&(String, Oid)> = branches
        .iter()
        .filter(|(name, _)| *name != state.integration_ref)
        .chain(
            kept.iter()
                .filter(|(name, _)| layout::parse_kept(plan, name) == Some(KeptKind::Tasks)),
        )
        .collect();
    let integrated: BTreeSet<&str> = match &integration_tip {
        Some(tip) => {
            let tree = commit::tree_of(repo, tip)?;
            let pairs: Vec<(Oid, Oid)> = candidates
                .iter()
                .map(|(_, oid)| (tip.clone(), oid.clone()))
                .collect();
            let merges = merge::merge_batch(repo, &pairs)?;
            candidates
                .iter()
                .zip(merges)
                .filter(|(_, m)| m.clean && m.tree == tree)
                .map(|((name, _), _)| name.as_str())
                .collect()
        }
        None => BTreeSet::new(),
    };
    let base = state.base.as_str();

    for (name, oid) in &branches {
        let short_name = layout::plan_branch_name(plan, name)
            .unwrap_or(name)
            .to_string();
        let loses = if *name == state.integration_ref {
            let merged = merged_elsewhere(repo, oid, plan)?;
            (!merged && oid != base)
                .then(|| "the run's result, not merged into any other branch".to_string())
        } else if dirty_streams.contains(&short_name) {
            Some("its worktree has uncommitted changes".to_string())
        } else if oid == base || integrated.contains(name.as_str()) {
            None
        } else {
            Some(format!(
                "commits not on the integration branch ({})",
                short(oid)
            ))
        };
        items.push(CleanItem {
            what: format!("branch {}", crate::layout::short_branch(name)),
            loses,
            action: if *name == state.integration_ref {
                CleanAction::IntegrationRef(name.clone())
            } else {
                CleanAction::Ref(name.clone())
            },
        });
    }
    for (name, oid) in &kept {
        let kind = layout::parse_kept(plan, name).unwrap_or(KeptKind::Other);
        let loses = match kind {
            // A task's own commits, kept when its branch moved on: safe once they are integrated.
            KeptKind::Tasks if integrated.contains(name.as_str()) => None,
            KeptKind::Tasks => Some(format!(
                "a task's commits not on the integration branch ({})",
                short(oid)
            )),
            KeptKind::Rejected => Some(format!(
                "work an agent did outside its lane, set aside ({})",
                short(oid)
            )),
            KeptKind::Deleted => Some(format!(
                "the tip of a branch deleted while a task ran ({})",
                short(oid)
            )),
            KeptKind::Failed | KeptKind::Attempts => {
                Some(format!("work of a failed task ({})", short(oid)))
            }
            KeptKind::Wip => Some(format!(
                "unfinished work of an interrupted task ({})",
                short(oid)
            )),
            KeptKind::Previous => Some(format!(
                "what an earlier run left on a branch ({})",
                short(oid)
            )),
            KeptKind::Aborted => Some(format!("work kept when a run was aborted ({})", short(oid))),
            KeptKind::Resolution | KeptKind::MovedIntegration | KeptKind::Other => {
                Some(format!("kept work ({})", short(oid)))
            }
        };
        items.push(CleanItem {
            what: format!("ref {name}"),
            loses,
            action: CleanAction::Ref(name.clone()),
        });
    }
    Ok(items)
}

/// Older run directories (logs, state) of runs that are over; the last run's is kept.
pub fn old_run_dirs(state_dir: &StateDir, keep: &str) -> Vec<CleanItem> {
    let Ok(entries) = std::fs::read_dir(state_dir.runs_dir()) else {
        return Vec::new();
    };
    let mut items: Vec<CleanItem> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() != keep)
        .filter(|e| {
            RunDir::at(e.path())
                .load()
                .map(|s| s.phase.is_over())
                .unwrap_or(true)
        })
        .map(|e| CleanItem {
            what: format!("run directory {}", e.path().display()),
            loses: None,
            action: CleanAction::RunDir(e.path()),
        })
        .collect();
    items.sort_by(|a, b| a.what.cmp(&b.what));
    items
}

/// Whether `oid` is reachable from a branch outside `streams/<plan>/` (it was merged).
fn merged_elsewhere(repo: &Repo, oid: &str, plan: &str) -> Result<bool> {
    let own = layout::plan_branches(plan);
    Ok(refs::branches_containing(repo, oid)?
        .iter()
        .any(|r| !r.starts_with(&own)))
}

pub fn clean_remove(repo: &Repo, item: &CleanItem) -> Result<()> {
    match &item.action {
        CleanAction::Worktree(path) => worktree::remove(repo, path)?,
        CleanAction::Ref(name) => refs::delete_ref(repo, name)?,
        CleanAction::IntegrationRef(name) => move_integration_ref(
            repo,
            None,
            name,
            None,
            None,
            IntegrationMove::Other("streams clean"),
        )?,
        CleanAction::RunDir(path) => std::fs::remove_dir_all(path)
            .context(|| format!("could not remove {}", path.display()))?,
    }
    Ok(())
}
