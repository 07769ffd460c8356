//! Picking a run up again: after a crash (`resume`), after a person resolved a conflict
//! (`continue`), or after they chose to leave a stream out (`skip`).
//!
//! Recovery trusts refs over the state file: the state says what was intended; the journal says
//! what was under way; the refs say what actually happened. Every step here checks before it
//! acts, so recovering twice (a crash during `resume`) is the same as recovering once.
//!
//! Also here: finding and stopping what a dead coordinator left running ([`run_processes`]),
//! which `abort` needs too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::run::Run;
use crate::coordinator::{self, IntegrationMove};
use crate::error::Result;
use crate::git::{self, refs, trailers, worktree};
use crate::ids::{Oid, StreamId, TaskId};
use crate::state::{Entry, StreamState, SyncUnit, TaskState, journal};
use crate::workspace::{Kind, Workspace};

/// Picking a run up after its coordinator died: what the journal it left says was under way.
/// The dispatcher drives the steps in order ([`super::Engine::recover`]).
pub(super) struct Recovery {
    entries: Vec<Entry>,
}

impl Recovery {
    /// Reads the journal the dead coordinator left, then journals this recovery.
    pub fn begin(run: &Run) -> Recovery {
        let entries = journal::read(run.ctx.journal.path());
        let _ = run.ctx.journal.append(Entry::Resumed {
            pid: std::process::id(),
        });
        Recovery { entries }
    }

    /// Step 1: agents of the dead coordinator must not keep writing into worktrees: every process
    /// group it recorded (or, where they can be told apart, every process of the run) is
    /// stopped.
    pub async fn stop_orphans(&self, run: &mut Run) {
        let entries = &self.entries;
        let mut groups: BTreeSet<i32> = BTreeSet::new();
        for stream in &run.state.streams {
            for task in &stream.tasks {
                if let TaskState::Running {
                    pgid: Some(pgid), ..
                } = task.state
                {
                    groups.insert(pgid);
                }
            }
        }
        for entry in entries {
            match entry {
                Entry::AgentSpawned { pgid, .. } => {
                    groups.insert(*pgid);
                }
                // Its whole group was stopped when it exited (a reused pgid is not ours).
                Entry::AgentExited { pgid, .. } => {
                    groups.remove(pgid);
                }
                _ => {}
            }
        }
        let grace = run.ctx.plan.grace.min(Duration::from_secs(5));
        let common_dir = run.ctx.repo.common_dir().to_path_buf();
        let places = run_places(&run.state);
        let stopping = run_processes(&run.state.run_id, &common_dir, &groups, &places);
        if !stopping.is_empty() {
            run.message(&format!(
                "stopping {} agent process(es) left running by the interrupted run",
                stopping.len()
            ));
        }
        stop_run_processes(&run.state.run_id, &common_dir, &groups, &places, grace).await;
    }

    /// Step 2: lock files a killed git left in the run's own worktrees and refs.
    pub fn clear_stale_locks(run: &mut Run) -> Result<()> {
        for note in super::stale_locks::clear_stale_locks(&run.ctx.repo, &run.state)? {
            run.message(&note);
        }
        Ok(())
    }

    /// Step 3: the integration ref; finishes or forgets the move that was in flight.
    pub fn reconcile_integration(&self, run: &mut Run) -> Result<()> {
        let entries = &self.entries;
        let name = run.state.integration_ref.clone();
        let actual = run.ctx.repo.ref_target(&name)?;
        if actual.as_deref() == Some(run.state.integration_tip.as_str()) {
            return recognise_trailers(run);
        }
        // Killed between saving the new run and creating its integration ref.
        if run.state.integration_tip == run.state.base && actual == run.state.integration_before {
            coordinator::move_integration_ref(
                &run.ctx.repo,
                None,
                &name,
                run.state.integration_before.as_deref(),
                Some(&run.state.base),
                IntegrationMove::Other("streams: start run"),
            )?;
            return Ok(());
        }
        // Killed between moving the ref and saving the state: the journal says which unit.
        let Some(actual) = actual else {
            run.guard_integration_ref()?;
            return recognise_trailers(run);
        };
        let mut tip = run.state.integration_tip.clone();
        for entry in entries {
            if let Entry::IntegrateIntent {
                stream,
                first,
                last,
                old,
                new,
            } = entry
                && *old == tip
                && is_ancestor_or_equal(&run.ctx.repo, new, &actual)
            {
                let Some((s, _)) = run.state.stream_by_name(stream) else {
                    continue;
                };
                let unit = run
                    .state
                    .queue
                    .iter()
                    .find(|u| u.stream == s && u.first == *first && u.last == *last)
                    .cloned();
                // A parked stream's unit is not queued: a resolution `continue` was recording.
                let parked = match &run.state.streams[s].state {
                    StreamState::Parked(park) => Some(park.clone()),
                    _ => None,
                };
                let unit = unit
                    .or_else(|| parked.as_ref().map(|p| p.unit.clone()))
                    .unwrap_or_else(|| SyncUnit {
                        stream: s,
                        first: *first,
                        last: *last,
                        from: Oid::default(),
                        to: Oid::default(),
                    });
                if run.unit_integrated(&unit, new.as_str().into()) {
                    run.finish_stream(s);
                }
                if let Some(park) = parked {
                    let _ = worktree::remove(&run.ctx.repo, &park.resolution_worktree);
                }
                tip = new.as_str().into();
                if tip == actual {
                    break;
                }
            }
        }
        // Whatever else moved it was not this run: put it back (keeping what was there).
        run.guard_integration_ref()?;
        recognise_trailers(run)
    }

    /// Step 4: interrupted tasks. One whose work was committed before the interruption is
    /// recognised (returned, for the dispatcher to queue), the others go back to their start,
    /// their work kept on a ref. Then streams whose every task is integrated by now are done.
    pub fn reconcile_tasks(&self, run: &mut Run) -> Result<Vec<TaskId>> {
        let mut committed = Vec::new();
        for s in 0..run.state.streams.len() {
            for t in 0..run.state.streams[s].tasks.len() {
                let TaskState::Running { start, .. } = run.state.streams[s].tasks[t].state.clone()
                else {
                    continue;
                };
                if self.committed_before(run, s, t, &start)? {
                    committed.push(StreamId::new(s).task(t));
                } else {
                    start_over(run, s, t, &start)?;
                }
            }
        }
        for s in 0..run.state.streams.len() {
            let record = &run.state.streams[s];
            if matches!(record.state, StreamState::Active { .. })
                && record
                    .tasks
                    .iter()
                    .all(|t| matches!(t.state, TaskState::Integrated { .. }))
            {
                run.finish_stream(s);
            }
        }
        Ok(committed)
    }

    /// Whether task `t` of stream `s`, running from `start`, committed its work before the crash
    /// (recorded only in the journal): its branch is at the end the journal names and its
    /// workspace is clean. If so, it is recorded as committed.
    fn committed_before(&self, run: &mut Run, s: usize, t: usize, start: &Oid) -> Result<bool> {
        let record = &run.state.streams[s];
        let name = record.name.clone();
        let branch_tip = run.ctx.repo.ref_target(&record.branch)?;
        let committed = self.entries.iter().rev().find_map(|e| match e {
            Entry::TaskCommitted {
                stream,
                task,
                start: st,
                end,
            } if *stream == name && *task == t && st == start => Some(Oid::from(end.as_str())),
            _ => None,
        });
        let Some(end) = committed.filter(|end| branch_tip.as_deref() == Some(end.as_str())) else {
            return Ok(false);
        };
        let ws = Workspace::find(&run.ctx.repo, &record.worktree);
        if !ws.is_clean_at(&run.ctx.repo, &end) {
            return Ok(false);
        }
        // A fix of a failed check: the task's work began before the fix did.
        let start = match run.state.streams[s].tasks[t].fixing.take() {
            Some(fix) => fix.start,
            None => start.clone(),
        };
        let stats = git::changes::work_stats(&run.ctx.repo, &start, &end)?;
        run.state.streams[s].tasks[t].state = TaskState::Committed {
            start,
            end,
            stats,
            finished_at: crate::state::now_ms(),
        };
        run.message(&format!(
            "{name} task {}: its work was committed before the interruption",
            t + 1
        ));
        Ok(true)
    }
}

/// Work that reached its sync point but is not queued (its check was running when the run
/// was interrupted): the tasks to go through the dispatcher's `after_commit` again, which
/// checks their work again (or queues it, if its check passed before the interruption).
pub(super) fn committed_tasks(run: &Run) -> Vec<TaskId> {
    let streams = &run.state.streams;
    (0..streams.len())
        .filter(|&s| matches!(streams[s].state, StreamState::Active { .. }))
        .flat_map(|s| {
            (0..streams[s].tasks.len())
                .filter(move |&t| matches!(streams[s].tasks[t].state, TaskState::Committed { .. }))
                .map(move |t| StreamId::new(s).task(t))
        })
        .collect()
}

/// Task `t` of stream `s` was interrupted: whatever it did is kept on its `wip` ref, and it
/// runs again from `start` (the interrupted attempt does not count against its retries).
pub(super) fn start_over(run: &mut Run, s: usize, t: usize, start: &Oid) -> Result<()> {
    let record = &run.state.streams[s];
    let (name, branch) = (record.name.clone(), record.branch.clone());
    let worktree_path: PathBuf = record.worktree.clone();
    let repo = &run.ctx.repo;
    let branch_tip = repo.ref_target(&branch)?;
    let wip = run.ctx.refs.wip(&name, t);
    let message = format!(
        "streams: work of {name} task {} when the run was interrupted",
        t + 1
    );
    let ws = Workspace::find(repo, &worktree_path);
    let kept = match ws.kind() {
        // A workspace that cannot even be reset is set aside by the next preparation.
        Kind::Private { .. } => ws
            .keep_and_reset(repo, start, &branch, &wip, &message)
            .ok()
            .flatten(),
        // An earlier version's linked worktree: the next preparation keeps what it holds.
        _ => None,
    };
    let kept = match (kept, branch_tip) {
        (Some(k), _) => Some(k),
        // No usable worktree: the branch itself may hold commits beyond the start.
        (None, Some(tip)) if tip != *start && !is_ancestor_or_equal(repo, &tip, start) => {
            let name = refs::keep_ref(repo, &wip, &tip, &message)?;
            Some((name, tip))
        }
        _ => None,
    };
    if let Some((wip, kept)) = kept {
        run.message(&format!(
            "{name} task {}: its unfinished work is kept on {wip} ({}); the task runs again from its start",
            t + 1,
            crate::text::short(&kept)
        ));
    }
    let record = &mut run.state.streams[s].tasks[t];
    record.attempts = record.attempts.saturating_sub(1);
    record.state = TaskState::Pending;
    Ok(())
}

/// Tasks whose trailers are on the integration branch are integrated, whatever the state
/// says: their work is never applied twice.
fn recognise_trailers(run: &mut Run) -> Result<()> {
    let found =
        trailers::integrated_tasks(&run.ctx.repo, &run.state.base, &run.state.integration_tip)?;
    let found: BTreeSet<(String, usize)> = found.into_iter().collect();
    let units: Vec<SyncUnit> = run.state.queue.clone();
    for unit in units {
        let name = run.state.streams[unit.stream].name.clone();
        let all = (unit.first..=unit.last).all(|t| {
            found.contains(&(name.clone(), t + 1))
                || matches!(
                    run.state.streams[unit.stream].tasks[t].state,
                    TaskState::Integrated { .. }
                )
        });
        if all {
            let tip = run.state.integration_tip.clone();
            if run.unit_integrated(&unit, tip) {
                run.finish_stream(unit.stream);
            }
        }
    }
    Ok(())
}

fn is_ancestor_or_equal(repo: &git::Repo, a: &str, b: &str) -> bool {
    a == b || git::refs::is_ancestor(repo, a, b).unwrap_or(false)
}

/// What is left running of a run, to stop before touching its worktrees.
pub enum RunProcesses {
    /// Processes of the run: the trees of the reapers it recorded that are still there
    /// (everything their agents started, those that left their session or cleared their
    /// environment included), processes whose environment says they are the run's (an
    /// agent's, should its reaper have been killed), and the trees of the reapers those are
    /// children of or that work in the run's worktrees (one a coordinator killed before
    /// recording it).
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

/// Where a run starts its commands, for [`run_processes`]: each stream's worktree, its
/// resolution worktree, the stopped line's and the gate's. Not the directory holding them: a `worktree_root`
/// shared by two repositories' plans of the same name holds the other run's worktrees too, and
/// its reapers are not this run's.
pub fn run_places(state: &crate::state::RunState) -> Vec<PathBuf> {
    let mut places: BTreeSet<PathBuf> = BTreeSet::new();
    for s in &state.streams {
        places.insert(s.worktree.clone());
        if let Some(dir) = s.worktree.parent() {
            places.insert(crate::layout::parked_worktree(dir, &s.name));
            places.insert(crate::layout::resolution_worktree(dir));
            places.insert(crate::layout::gate_worktree(dir));
        }
    }
    places.into_iter().collect()
}

/// Finds what is left of a run. A recorded process group is never trusted on its own where it
/// can be checked: after a reboot, or once process ids wrap, it may be anyone's. It is taken for
/// an agent's reaper only while it still is one: a fork of this very program, leading a
/// session of its own.
///
/// A reaper no journal names (its coordinator was killed before recording it) is found as the
/// parent of a process of the run's, or, once nothing marked is left in its tree (the agent
/// exited, what it left cleared its environment), by where it works: a reaper stays in the
/// directory its command was started in (`places`, the run's worktrees), which only the run's
/// own reapers do (no other run of the plan can be going while its lock is held).
pub fn run_processes(
    run_id: &str,
    common_dir: &Path,
    recorded_groups: &BTreeSet<i32>,
    places: &[PathBuf],
) -> RunProcesses {
    if Path::new("/proc/self/environ").exists() {
        let mark: Vec<String> = super::process::run_mark(run_id, common_dir)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let mut pids: BTreeSet<i32> = super::process::processes_with_env(&mark)
            .into_iter()
            .collect();
        let processes = super::reaper::all_processes();
        // A coordinator killed between starting an agent and recording it left a reaper no
        // journal names: the parent of a process of the run's is the run's reaper too, and its
        // tree (a stray that cleared its environment) is the run's.
        let parents = processes
            .iter()
            .filter(|p| pids.contains(&p.pid))
            .map(|p| p.ppid);
        let working_here = processes
            .iter()
            .filter(|p| p.session == p.pid && works_in(p.pid, places))
            .map(|p| p.pid);
        let reapers: BTreeSet<i32> = recorded_groups
            .iter()
            .copied()
            .chain(parents)
            .chain(working_here)
            .collect();
        for group in reapers {
            if is_a_reaper(group, &processes) {
                pids.extend(super::reaper::tree(group, &processes));
            }
        }
        // The two scans above were taken one after the other: a short-lived process (an
        // agent's `sleep` in a wait loop) seen by the first may have ended, and its successor
        // appeared, by the second. Only what still lives now is stopped and counted.
        let now = super::reaper::all_processes();
        // Nor is what this process started the interrupted run's, though it carries the same
        // mark (its git commands, its own agents and their reapers): `resume` stops the dead
        // run's processes while it runs, and looks again until none is left.
        let own = super::reaper::descendants(std::process::id() as i32, &now);
        let live: BTreeSet<i32> = now
            .iter()
            .filter(|p| !p.zombie && !own.contains(&p.pid))
            .map(|p| p.pid)
            .collect();
        pids.retain(|pid| live.contains(pid));
        RunProcesses::Verified(pids.into_iter().collect())
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

/// Whether the working directory of `pid` is in one of `places`.
fn works_in(pid: i32, places: &[PathBuf]) -> bool {
    let Ok(cwd) = std::fs::read_link(format!("/proc/{pid}/cwd")) else {
        return false;
    };
    // A worktree removed since reads as deleted.
    let cwd = cwd.to_string_lossy();
    let cwd = Path::new(cwd.strip_suffix(" (deleted)").unwrap_or(&cwd));
    places.iter().any(|place| cwd.starts_with(place))
}

/// Whether `pid` is an agent's reaper: a process of this program's (a reaper is a fork of
/// streams that never execs) leading its own session, blocking the signals a reaper blocks
/// (unlike any other process of this program: a `streams ui` started in a session of its own
/// is none).
fn is_a_reaper(pid: i32, processes: &[super::reaper::Proc]) -> bool {
    let program = |pid: &str| {
        std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| {
                let p = p.to_string_lossy().into_owned();
                // A program replaced since it started (a rebuild) reads as deleted.
                p.strip_suffix(" (deleted)")
                    .map(str::to_string)
                    .unwrap_or(p)
            })
    };
    pid > 0
        && processes
            .iter()
            .any(|p| p.pid == pid && p.session == pid && !p.zombie)
        && program(&pid.to_string()).is_some_and(|exe| Some(exe) == program("self"))
        && super::reaper::blocks_termination(pid)
}

/// SIGTERM, up to `grace` to exit, then SIGKILL, until nothing of the run is left.
///
/// What is signalled is looked for again every round ([`run_processes`]), not taken from one
/// look at /proc: a process of the run may start another between that look and the signal (a
/// gate's shell forking its next command as its coordinator was killed), which would outlive
/// the stop, held by its reaper. (A reaper is left to end on its own, once its tree is empty:
/// it blocks SIGTERM, and killed, what it holds would go to init.) Each round signals only what
/// is still the run's then, so a pid reused meanwhile is not signalled.
pub async fn stop_run_processes(
    run_id: &str,
    common_dir: &Path,
    recorded_groups: &BTreeSet<i32>,
    places: &[PathBuf],
    grace: Duration,
) {
    use nix::sys::signal::{Signal, kill, killpg};
    use nix::unistd::Pid;
    let find = || {
        let (run_id, common_dir) = (run_id.to_string(), common_dir.to_path_buf());
        let (groups, places) = (recorded_groups.clone(), places.to_vec());
        async move {
            tokio::task::spawn_blocking(move || {
                run_processes(&run_id, &common_dir, &groups, &places)
            })
            .await
            .unwrap_or(RunProcesses::Verified(Vec::new()))
        }
    };
    let signal = |processes: &RunProcesses, signal: Signal, already: &mut BTreeSet<i32>| {
        let (targets, group) = match processes {
            RunProcesses::Verified(pids) => (pids.to_vec(), false),
            RunProcesses::Groups(groups) => (groups.iter().copied().collect(), true),
        };
        for target in targets.into_iter().filter(|&t| already.insert(t)) {
            let _ = if group {
                killpg(Pid::from_raw(target), signal)
            } else {
                kill(Pid::from_raw(target), signal)
            };
        }
    };
    // SIGTERM to each process once, as it is found; the grace period is the same for all.
    let mut terminated = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + grace;
    loop {
        let processes = find().await;
        if processes.is_empty() {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        signal(&processes, Signal::SIGTERM, &mut terminated);
        // These are not our children: there is nothing to wait on but their disappearance.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Then SIGKILL, round after round (a killed shell's last fork, an orphan re-parented to its
    // reaper); bounded, for a tree that forks faster than it is killed.
    for _ in 0..400 {
        let processes = find().await;
        if processes.is_empty() {
            return;
        }
        signal(&processes, Signal::SIGKILL, &mut BTreeSet::new());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tracing::warn!("processes of the interrupted run kept appearing; giving up stopping them");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process this one started carries the run's mark (a git of the resuming coordinator's)
    /// and is not the interrupted run's; one it left (re-parented away) is.
    #[cfg(target_os = "linux")]
    #[test]
    fn what_this_process_started_is_not_the_interrupted_runs() {
        let dir = tempfile::tempdir().unwrap();
        let run_id = format!("own-{}", std::process::id());
        let mark = crate::exec::process::run_mark(&run_id, dir.path());
        let mut own = std::process::Command::new("sleep")
            .arg("30")
            .envs(mark.iter().map(|(k, v)| (k, v)))
            .spawn()
            .unwrap();
        // Its shell exits at once: the `sleep` is no longer this process's descendant.
        let out = std::process::Command::new("sh")
            .args(["-c", "sleep 30 >/dev/null 2>&1 & echo $!"])
            .envs(mark.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap();
        let left: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let found = run_processes(&run_id, dir.path(), &BTreeSet::new(), &[]);
        let _ = own.kill();
        let _ = own.wait();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(left),
            nix::sys::signal::Signal::SIGKILL,
        );
        let RunProcesses::Verified(found) = found else {
            panic!("/proc is there");
        };
        assert_eq!(found, vec![left]);
    }
}
