//! The engine at sync points: integrating queued units in order, guarding the integration
//! branch, and writing the halt when a unit conflicts.

use super::dispatcher::{Engine, resolution_worktree_path};
use crate::coordinator::{self, ConflictFound, TaskRange, UnitInput, UnitOutcome};
use crate::error::{Error, Result};
use crate::failpoint;
use crate::git;
use crate::plan::SyncPoint;
use crate::report::Event;
use crate::state::{
    Entry, Halt, RunPhase, SpanOutcome, Step, StreamState, SyncUnit, TaskState, now_ms,
};

impl Engine {
    /// Integrates queued units in order until the queue is empty or a conflict halts.
    pub(super) async fn drain_queue(&mut self) {
        while self.halting.is_none() && self.fatal.is_none() && !self.state.queue.is_empty() {
            let done = match self.gate_command() {
                // Stopping: what waits is gated by `resume`, not now (a gate can take minutes).
                Some(_) if self.stopping.is_some() => return,
                Some(gate) => self.gate_queue(gate).await,
                None => {
                    let unit = self.state.queue[0].clone();
                    self.integrate_unit(unit).await
                }
            };
            if let Err(e) = done {
                self.fail_session(e);
            }
        }
    }

    pub(super) fn unit_tasks(&self, unit: &SyncUnit) -> Vec<TaskRange> {
        let record = &self.state.streams[unit.stream];
        (unit.first..=unit.last)
            .filter_map(|i| match &record.tasks[i].state {
                TaskState::Committed { start, end, .. }
                | TaskState::Integrated { start, end, .. } => Some(TaskRange {
                    index: i,
                    summary: record.tasks[i].summary.clone(),
                    start: start.clone(),
                    end: end.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// The integration branch is moved by this dispatcher alone. Found anywhere else (an agent
    /// checked it out and committed, or someone reset it), it is put back where the run left it;
    /// what was there is kept on a ref.
    pub(super) fn guard_integration_ref(&mut self) -> Result<()> {
        let name = self.state.integration_ref.clone();
        let actual = self.repo.ref_target(&name)?;
        if actual.as_deref() == Some(self.state.integration_tip.as_str()) {
            return Ok(());
        }
        let kept = match &actual {
            Some(found) => Some(git::refs::keep_ref(
                &self.repo,
                &self.refs.moved_integration(),
                found,
                "streams: the integration branch was moved outside streams",
            )?),
            None => None,
        };
        let tip = self.state.integration_tip.clone();
        coordinator::move_integration_ref(
            &self.repo,
            None,
            &name,
            actual.as_deref(),
            Some(&tip),
            coordinator::IntegrationMove::Other("streams: put back"),
        )?;
        let short = crate::layout::short_branch(&name);
        self.reporter.message(&format!(
            "warning: {short} was moved outside streams; it is put back at {}{}",
            coordinator::short(&tip),
            kept.map(|k| format!(", and what was there is kept on {k}"))
                .unwrap_or_default()
        ));
        Ok(())
    }

    pub(super) async fn integrate_unit(&mut self, unit: SyncUnit) -> Result<()> {
        failpoint::hit("before-integrate");
        self.guard_integration_ref()?;
        let began = now_ms();
        let tasks = self.unit_tasks(&unit);
        let name = self.state.streams[unit.stream].name.clone();
        let (repo, journal) = (self.repo.clone(), self.journal.clone());
        let (integration_ref, tip) = (
            self.state.integration_ref.clone(),
            self.state.integration_tip.clone(),
        );
        let (from, to, strategy, identity) = (
            unit.from.clone(),
            unit.to.clone(),
            self.plan.merge,
            self.identity_env.clone(),
        );
        let stream_name = name.clone();
        let task_ranges = tasks.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            coordinator::integrate(
                &repo,
                Some(&journal),
                &UnitInput {
                    stream: &stream_name,
                    integration_ref: &integration_ref,
                    tip: &tip,
                    from: &from,
                    to: &to,
                    tasks: &task_ranges,
                    strategy,
                    identity_env: &identity,
                },
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("integration panicked: {e}")))?
        .map_err(Error::Git)?;
        tracing::debug!("{name}: integration {} ms", now_ms().saturating_sub(began));
        match outcome {
            UnitOutcome::Integrated { tip, commits } => {
                self.record_span(unit.stream, Step::Integration, began, SpanOutcome::Ok, None);
                let stream_done = self.unit_integrated(&unit, tip.clone());
                self.emit(Event::Integrated {
                    stream: name,
                    tasks: tasks.iter().map(|t| t.index + 1).collect(),
                    commits,
                    tip: tip.to_string(),
                });
                if stream_done {
                    self.finish_stream(unit.stream);
                }
                self.save()?;
                failpoint::hit("after-integrate-saved");
            }
            UnitOutcome::Conflict(conflict) => {
                let files = conflict
                    .merge
                    .conflicted_paths()
                    .iter()
                    .map(|p| p.to_string())
                    .collect();
                self.record_span(
                    unit.stream,
                    Step::Integration,
                    began,
                    SpanOutcome::Conflict { files },
                    None,
                );
                if self.running > 0 {
                    self.reporter.message(&format!(
                        "conflict integrating {name} in {}: starting nothing new; halting once {} running task(s) finish",
                        crate::report::quote_paths(&conflict.merge.conflicted_paths()),
                        self.running
                    ));
                }
                self.halting = Some((unit, conflict));
            }
        }
        Ok(())
    }

    /// Records a unit as integrated at `tip`: tasks, queue, and the kept task ends. Returns
    /// whether that completes its stream (the caller finishes it, after reporting the unit).
    pub(crate) fn unit_integrated(&mut self, unit: &SyncUnit, tip: git::Oid) -> bool {
        self.state.integration_tip = tip;
        self.state.queue.retain(|u| u != unit);
        let record = &mut self.state.streams[unit.stream];
        for i in unit.first..=unit.last {
            if let TaskState::Committed {
                start,
                end,
                stats,
                finished_at,
            } = &record.tasks[i].state
            {
                record.tasks[i].state = TaskState::Integrated {
                    start: start.clone(),
                    end: end.clone(),
                    stats: stats.clone(),
                    finished_at: *finished_at,
                };
            }
        }
        let all_done = record
            .tasks
            .iter()
            .all(|t| matches!(t.state, TaskState::Integrated { .. }));
        let last_end = record.tasks[unit.last].state.end().cloned();
        let stream_name = record.name.clone();
        if self.sync() == SyncPoint::Task && !all_done {
            // The branch will move to the new tip for the next task; keep this task's own end.
            if let Some(end) = last_end {
                let name = self.refs.task_end(&stream_name, unit.last);
                let _ = git::refs::keep_ref(&self.repo, &name, &end, "streams: task end");
            }
        }
        // A failed stream whose earlier work just landed stays failed.
        all_done
            && matches!(
                self.state.streams[unit.stream].state,
                StreamState::Active { .. }
            )
    }

    pub(super) async fn write_halt(
        &mut self,
        unit: SyncUnit,
        conflict: ConflictFound,
    ) -> Result<()> {
        let name = self.state.streams[unit.stream].name.clone();
        let tasks = self.unit_tasks(&unit);
        let bundle = self.run_dir.conflicts_dir(&name);
        let resolution = resolution_worktree_path(&self.repo, &self.plan);
        let (repo, plan_name, integration_ref, run_id) = (
            self.repo.clone(),
            self.plan.name.clone(),
            self.state.integration_ref.clone(),
            self.state.run_id.clone(),
        );
        let (bundle_c, resolution_c, conflict_c, name_c, tasks_c) = (
            bundle.clone(),
            resolution.clone(),
            conflict.clone(),
            name.clone(),
            tasks.clone(),
        );
        let files = tokio::task::spawn_blocking(move || {
            coordinator::write_halt(
                &repo,
                &coordinator::HaltInput {
                    stream: &name_c,
                    tasks: &tasks_c,
                    plan_name: &plan_name,
                    integration_ref: &integration_ref,
                    conflict: &conflict_c,
                    bundle_dir: &bundle_c,
                    resolution_worktree: &resolution_c,
                    run_id: &run_id,
                },
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("writing the conflict panicked: {e}")))??;
        self.state.phase = RunPhase::Halted(Halt {
            unit,
            files: files.clone(),
            base: conflict.base.clone(),
            ours: conflict.ours.clone(),
            theirs: conflict.theirs.clone(),
            bundle: bundle.clone(),
            resolution_worktree: resolution.clone(),
        });
        let _ = self.journal.append(Entry::Halted {
            stream: name.clone(),
        });
        self.save()?;
        self.emit(Event::Conflict {
            stream: name,
            files,
            bundle: bundle.display().to_string(),
            worktree: resolution.display().to_string(),
        });
        Ok(())
    }
}
