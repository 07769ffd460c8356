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
use std::path::Path;
use std::time::Duration;

use super::dispatcher::Engine;
use crate::coordinator::{self, IntegrationMove, UnitInput};
use crate::error::{Error, Result};
use crate::git::changes::keep_work;
use crate::git::{self, refs, trailers, worktree};
use crate::ids::Oid;
use crate::state::{Entry, RunPhase, StreamState, SyncUnit, TaskState, journal};

impl Engine {
    /// Reconciles the state with the refs and the journal after the coordinator died, so that
    /// `run` can go on: stops its orphaned agents, finishes or forgets the integration that was
    /// in flight, and sets every interrupted task back to its start (its work kept on a ref).
    pub async fn recover(&mut self) -> Result<()> {
        let entries = journal::read(self.journal.path());
        let _ = self.journal.append(Entry::Resumed {
            pid: std::process::id(),
        });

        // 1. Agents of the dead coordinator must not keep writing into worktrees.
        let mut groups: BTreeSet<i32> = BTreeSet::new();
        for stream in &self.state.streams {
            for task in &stream.tasks {
                if let TaskState::Running {
                    pgid: Some(pgid), ..
                } = task.state
                {
                    groups.insert(pgid);
                }
            }
        }
        for entry in &entries {
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
        let grace = self.plan.grace.min(Duration::from_secs(5));
        let stopping = run_processes(&self.state.run_id, &groups);
        if !stopping.is_empty() {
            self.reporter.message(&format!(
                "stopping {} agent process(es) left running by the interrupted run",
                stopping.len()
            ));
        }
        stop_run_processes(&stopping, grace).await;

        // 2. Lock files a killed git left in the run's own worktrees and refs.
        for note in super::control::clear_stale_locks(&self.repo, &self.state)? {
            self.reporter.message(&note);
        }

        // 3. The integration ref: finish or forget the move that was in flight.
        self.reconcile_integration(&entries)?;

        // 4. Interrupted tasks: committed ones are recognised, the others go back to their start.
        self.reconcile_tasks(&entries)?;

        // 5. Work that reached its sync point but is not queued: its check was running. It is
        // checked again (or queued, if its check passed before the interruption).
        for s in 0..self.state.streams.len() {
            if !matches!(self.state.streams[s].state, StreamState::Active { .. }) {
                continue;
            }
            for t in 0..self.state.streams[s].tasks.len() {
                if matches!(
                    self.state.streams[s].tasks[t].state,
                    TaskState::Committed { .. }
                ) {
                    self.after_commit(s, t);
                }
            }
        }

        self.state.phase = RunPhase::Running;
        self.save()
    }

    fn reconcile_integration(&mut self, entries: &[Entry]) -> Result<()> {
        let name = self.state.integration_ref.clone();
        let actual = self.repo.ref_target(&name)?;
        if actual.as_deref() == Some(self.state.integration_tip.as_str()) {
            return self.recognise_trailers();
        }
        // Killed between saving the new run and creating its integration ref.
        if self.state.integration_tip == self.state.base && actual == self.state.integration_before
        {
            coordinator::move_integration_ref(
                &self.repo,
                None,
                &name,
                self.state.integration_before.as_deref(),
                Some(&self.state.base),
                IntegrationMove::Other("streams: start run"),
            )?;
            return Ok(());
        }
        // Killed between moving the ref and saving the state: the journal says which unit.
        let Some(actual) = actual else {
            self.guard_integration_ref()?;
            return self.recognise_trailers();
        };
        let mut tip = self.state.integration_tip.clone();
        for entry in entries {
            if let Entry::IntegrateIntent {
                stream,
                first,
                last,
                old,
                new,
            } = entry
                && *old == tip
                && is_ancestor_or_equal(&self.repo, new, &actual)
            {
                let Some((s, _)) = self.state.stream_by_name(stream) else {
                    continue;
                };
                let unit = self
                    .state
                    .queue
                    .iter()
                    .find(|u| u.stream == s && u.first == *first && u.last == *last)
                    .cloned();
                let unit = unit.unwrap_or_else(|| SyncUnit {
                    stream: s,
                    first: *first,
                    last: *last,
                    from: Oid::default(),
                    to: Oid::default(),
                });
                if self.unit_integrated(&unit, new.as_str().into()) {
                    self.finish_stream(s);
                }
                tip = new.as_str().into();
                if tip == actual {
                    break;
                }
            }
        }
        // Whatever else moved it was not this run: put it back (keeping what was there).
        self.guard_integration_ref()?;
        self.recognise_trailers()
    }

    /// Tasks whose trailers are on the integration branch are integrated, whatever the state
    /// says: their work is never applied twice.
    fn recognise_trailers(&mut self) -> Result<()> {
        let found =
            trailers::integrated_tasks(&self.repo, &self.state.base, &self.state.integration_tip)?;
        let found: BTreeSet<(String, usize)> = found.into_iter().collect();
        let units: Vec<SyncUnit> = self.state.queue.clone();
        for unit in units {
            let name = self.state.streams[unit.stream].name.clone();
            let all = (unit.first..=unit.last).all(|t| {
                found.contains(&(name.clone(), t + 1))
                    || matches!(
                        self.state.streams[unit.stream].tasks[t].state,
                        TaskState::Integrated { .. }
                    )
            });
            if all {
                let tip = self.state.integration_tip.clone();
                if self.unit_integrated(&unit, tip) {
                    self.finish_stream(unit.stream);
                }
            }
        }
        Ok(())
    }

    fn reconcile_tasks(&mut self, entries: &[Entry]) -> Result<()> {
        for s in 0..self.state.streams.len() {
            for t in 0..self.state.streams[s].tasks.len() {
                let TaskState::Running { start, .. } = self.state.streams[s].tasks[t].state.clone()
                else {
                    continue;
                };
                let name = self.state.streams[s].name.clone();
                let branch = self.state.streams[s].branch.clone();
                let worktree_path = self.state.streams[s].worktree.clone();
                let branch_tip = self.repo.ref_target(&branch)?;
                // Committed before the crash, recorded only in the journal?
                let committed = entries.iter().rev().find_map(|e| match e {
                    Entry::TaskCommitted {
                        stream,
                        task,
                        start: st,
                        end,
                    } if *stream == name && *task == t && *st == start => {
                        Some(Oid::from(end.as_str()))
                    }
                    _ => None,
                });
                let clean = worktree_path.exists()
                    && git::changes::dirty_paths(&worktree_path).is_ok_and(|d| d.is_empty());
                if let Some(end) = committed
                    && branch_tip.as_deref() == Some(end.as_str())
                    && clean
                {
                    // A fix of a failed check: the task's work began before the fix did.
                    let start = match self.state.streams[s].tasks[t].fixing.take() {
                        Some(fix) => fix.start,
                        None => start,
                    };
                    let stats = git::changes::work_stats(&self.repo, &start, &end)?;
                    self.state.streams[s].tasks[t].state = TaskState::Committed {
                        start,
                        end,
                        stats,
                        finished_at: crate::state::now_ms(),
                    };
                    self.after_commit(s, t);
                    self.reporter.message(&format!(
                        "{name} task {}: its work was committed before the interruption",
                        t + 1
                    ));
                    continue;
                }
                // Interrupted: keep whatever it did, then start it over.
                let wip = self.refs.wip(&name, t);
                let message = format!(
                    "streams: work of {name} task {} when the run was interrupted",
                    t + 1
                );
                let kept = if worktree_path.join(".git").exists() {
                    let kept = keep_work(
                        &self.repo,
                        &worktree_path,
                        &start,
                        Some(&branch),
                        &wip,
                        &message,
                    )
                    .ok()
                    .flatten();
                    // A workspace that cannot even be reset is repaired by prepare() later.
                    let _ = if git::workspace::is_workspace(&worktree_path) {
                        git::workspace::reset_to(&self.repo, &worktree_path, &branch, &start)
                    } else {
                        worktree::reset_to(&worktree_path, &branch, &start)
                    };
                    kept
                } else {
                    None
                };
                let kept = match (kept, branch_tip) {
                    (Some(k), _) => Some(k),
                    // No usable worktree: the branch itself may hold commits beyond the start.
                    (None, Some(tip))
                        if tip != start && !is_ancestor_or_equal(&self.repo, &tip, &start) =>
                    {
                        let name = refs::keep_ref(&self.repo, &wip, &tip, &message)?;
                        Some((name, tip))
                    }
                    _ => None,
                };
                if let Some((wip, kept)) = kept {
                    self.reporter.message(&format!(
                        "{name} task {}: its unfinished work is kept on {wip} ({}); the task runs again from its start",
                        t + 1,
                        coordinator::short(&kept)
                    ));
                }
                let record = &mut self.state.streams[s].tasks[t];
                // The interrupted attempt does not count against its retries.
                record.attempts = record.attempts.saturating_sub(1);
                record.state = TaskState::Pending;
            }
        }
        // Streams whose every task is integrated by now are done.
        for s in 0..self.state.streams.len() {
            let record = &self.state.streams[s];
            if matches!(record.state, StreamState::Active { .. })
                && record
                    .tasks
                    .iter()
                    .all(|t| matches!(t.state, TaskState::Integrated { .. }))
            {
                self.finish_stream(s);
            }
        }
        Ok(())
    }

    /// `continue`: records the person's resolution of the halted unit and clears the halt.
    pub fn resolve(&mut self, force: bool) -> Result<Option<coordinator::Unresolved>> {
        let RunPhase::Halted(halt) = self.state.phase.clone() else {
            return Err(Error::state(
                "the run is not halted on a conflict",
                "`streams status` shows where it stands",
            ));
        };
        let wt = &halt.resolution_worktree;
        if !wt.exists() {
            // Deleted by a person (or a cleanup script): lay it out again rather than fail on
            // a directory that is not there. Nothing of the run is lost: the halt records the
            // three sides of the merge.
            let name = self.state.streams[halt.unit.stream].name.clone();
            let tasks = self.unit_tasks(&halt.unit);
            coordinator::recreate_resolution_worktree(
                &self.repo,
                &halt,
                &coordinator::RecreateInput {
                    stream: &name,
                    tasks: &tasks,
                    plan_name: &self.plan.name,
                    integration_ref: &self.state.integration_ref,
                    run_id: &self.state.run_id,
                },
            )?;
            return Ok(Some(coordinator::Unresolved::Recreated));
        }
        if !wt.join(".git").exists() {
            // Something is there, but not the worktree: it may hold the person's edits, so it
            // is not streams' to delete.
            return Err(Error::state(
                format!(
                    "the resolution worktree {} is no longer a git worktree",
                    wt.display()
                ),
                "move that directory out of the way (copy your resolved files first) and run `streams continue` again: it is laid out anew with the conflicts; or `streams abort`",
            ));
        }
        let tree = match coordinator::check_resolution(
            &self.repo,
            &halt.resolution_worktree,
            &halt,
            force,
        )? {
            Ok(tree) => tree,
            Err(unresolved) => return Ok(Some(unresolved)),
        };
        let began = crate::state::now_ms();
        let tasks = self.unit_tasks(&halt.unit);
        let name = self.state.streams[halt.unit.stream].name.clone();
        let input = UnitInput {
            stream: &name,
            integration_ref: &self.state.integration_ref,
            tip: &halt.ours,
            from: &halt.unit.from,
            to: &halt.unit.to,
            tasks: &tasks,
            strategy: self.plan.merge,
            identity_env: &self.identity_env,
        };
        let commit =
            coordinator::record_resolution(&self.repo, Some(&self.journal), &input, &tree)?;
        let _ = self.journal.append(Entry::Resolved {
            stream: name.clone(),
            commit: commit.to_string(),
        });
        self.reporter.message(&format!(
            "recorded the resolution of {name} as {} on {}",
            coordinator::short(&commit),
            crate::layout::short_branch(&self.state.integration_ref)
        ));
        self.record_span(
            halt.unit.stream,
            crate::state::Step::Integration,
            began,
            crate::state::SpanOutcome::Ok,
            None,
        );
        if self.unit_integrated(&halt.unit, commit.clone()) {
            self.finish_stream(halt.unit.stream);
        }
        self.state.phase = RunPhase::Running;
        self.save()?;
        worktree::remove(&self.repo, &halt.resolution_worktree)?;
        Ok(None)
    }

    /// `skip`: leaves a stream's unintegrated work out of the run. Returns whether the run is
    /// still halted (on another stream's conflict).
    pub fn skip(&mut self, stream: &str) -> Result<bool> {
        let RunPhase::Halted(halt) = self.state.phase.clone() else {
            return Err(Error::state(
                "`streams skip` works on a run halted on a conflict, and this run is not halted",
                "`streams status` shows where it stands",
            ));
        };
        let Some((s, record)) = self.state.stream_by_name(stream) else {
            let names: Vec<&str> = self.state.streams.iter().map(|s| s.name.as_str()).collect();
            return Err(Error::usage_with_hint(
                format!("there is no stream `{stream}` in this run"),
                format!("the streams are: {}", names.join(", ")),
            ));
        };
        if matches!(record.state, StreamState::Done { .. }) {
            return Err(Error::usage(format!(
                "stream `{stream}` is already integrated; there is nothing to skip"
            )));
        }
        let halted_here = halt.unit.stream == s;
        if halted_here {
            self.drop_resolution(&halt)?;
        }
        self.state.queue.retain(|u| u.stream != s);
        self.skip_stream(
            s,
            "left out with `streams skip` (its branch is kept)".into(),
            true,
        );
        if halted_here {
            self.state.phase = RunPhase::Running;
        }
        self.save()?;
        Ok(!halted_here)
    }

    /// Removes the resolution worktree of a halt that will not be resolved, keeping anything the
    /// person did there, and puts the integration ref back at the halt's tip.
    pub(super) fn drop_resolution(&mut self, halt: &crate::state::Halt) -> Result<()> {
        let name = self.state.streams[halt.unit.stream].name.clone();
        let keep = self.refs.resolution(&name);
        if halt.resolution_worktree.join(".git").exists() {
            if let Ok(Some((keep, kept))) = keep_work(
                &self.repo,
                &halt.resolution_worktree,
                &halt.ours,
                None,
                &keep,
                "streams: unfinished resolution",
            ) {
                self.reporter.message(&format!(
                    "the unfinished resolution is kept on {keep} ({})",
                    coordinator::short(&kept)
                ));
            }
        }
        let current = self.repo.ref_target(&self.state.integration_ref)?;
        if let Some(current) = current
            && current != halt.ours
        {
            coordinator::move_integration_ref(
                &self.repo,
                None,
                &self.state.integration_ref,
                Some(&current),
                Some(&halt.ours),
                IntegrationMove::Other("streams: drop resolution"),
            )?;
        }
        worktree::remove(&self.repo, &halt.resolution_worktree)?;
        Ok(())
    }
}

fn is_ancestor_or_equal(repo: &git::Repo, a: &str, b: &str) -> bool {
    a == b || git::refs::is_ancestor(repo, a, b).unwrap_or(false)
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
