//! What the dispatcher does with each event an executor sends: records it in the run state
//! (saved before anything depends on it), tells the reporters, and, when a task's executor
//! ends, what its outcome means for the run (committed work queued for its sync point, a
//! failure or a stop recorded, an interrupted task left to `resume`).

use super::Engine;
use crate::error::{Error, Result};
use crate::exec::decide;
use crate::exec::events::ExecEvent;
use crate::exec::notify;
use crate::exec::process::Cancel;
use crate::exec::task::TaskOutcome;
use crate::ids::TaskId;
use crate::report::Event;
use crate::state::{Entry, FailReason, SpanOutcome, Step, TaskState};

impl Engine {
    pub(super) async fn handle(&mut self, event: ExecEvent) -> Result<()> {
        let run = &mut self.run;
        match event {
            ExecEvent::Note { stream, message } => {
                let record = &mut run.state.streams[stream.index()];
                record.notes.push(message.clone());
                let name = record.name.clone();
                run.emit(Event::Note {
                    stream: name,
                    message,
                });
            }
            ExecEvent::Spawned {
                task,
                attempt,
                pgid,
            } => {
                let record = run.task_mut(task);
                record.attempts = attempt;
                record.waiting = None;
                if let TaskState::Running { pgid: slot, .. } = &mut record.state {
                    *slot = Some(pgid);
                }
                run.save()?;
            }
            ExecEvent::Retrying {
                task,
                attempt,
                reason,
                why,
                delay,
            } => {
                run.task_mut(task).retried_for.push(why);
                run.save()?;
                let name = run.state.streams[task.stream.index()].name.clone();
                run.emit(Event::TaskRetrying {
                    stream: name,
                    task: task.number(),
                    attempt,
                    reason: reason.to_string(),
                    delay_ms: delay.as_millis() as u64,
                });
            }
            ExecEvent::Usage { task, usage } => {
                let name = run.state.streams[task.stream.index()].name.clone();
                if let Some(u) = &usage.usage {
                    run.emit(Event::TaskUsage {
                        stream: name,
                        task: task.number(),
                        attempt: usage.attempt,
                        input_tokens: u.input,
                        output_tokens: u.output,
                        cache_read_tokens: u.cache_read,
                        cache_write_tokens: u.cache_write,
                        cost_usd: u.cost_usd,
                    });
                }
                run.task_mut(task).usage.push(usage);
                self.budgets.attempt_recorded(task);
                run.save()?;
            }
            ExecEvent::Spending { task, usage } => {
                let spending = self.budgets.spending(&self.run, task, usage);
                for (s, _) in spending.stop {
                    self.channels.stop_stream(s, Cancel::Budget);
                }
                if !spending.warn.is_empty() {
                    let run = &mut self.run;
                    for warning in spending.warn {
                        let _ = run.ctx.journal.append(Entry::BudgetWarning {
                            budget: warning.budget.clone(),
                            spent: warning.spent.clone(),
                        });
                        run.emit(Event::BudgetWarning {
                            budget: warning.budget.clone(),
                            spent: warning.spent.clone(),
                        });
                        run.state.budget_warnings.push(warning);
                    }
                    run.save()?;
                }
            }
            ExecEvent::Waiting { task, wait } => {
                let name = run.state.streams[task.stream.index()].name.clone();
                run.emit(Event::TaskWaiting {
                    stream: name,
                    task: task.number(),
                    until: wait.until,
                    reset_known: wait.reset_known,
                    message: wait.message.clone(),
                });
                let record = run.task_mut(task);
                record.waiting = Some(wait);
                record.limit_waits += 1;
                run.save()?;
            }
            ExecEvent::SetupStarted { stream } => {
                run.state.streams[stream.index()].setting_up = true;
                run.save()?;
            }
            ExecEvent::SetupFinished {
                stream,
                started_at,
                failure,
                at,
            } => {
                let record = &mut run.state.streams[stream.index()];
                record.setting_up = false;
                if at.is_some() {
                    record.setup_at = at;
                }
                let outcome = match failure {
                    None => SpanOutcome::Ok,
                    Some(_) if self.stopping.is_some() => SpanOutcome::Interrupted,
                    Some(reason) => SpanOutcome::Failed { reason },
                };
                let log = run.ctx.run_dir.setup_log_path(&record.name);
                run.record_span(stream.index(), Step::Setup, started_at, outcome, Some(log));
                run.save()?;
            }
            ExecEvent::Finished { task, outcome } => {
                self.tasks_running -= 1;
                self.run.guard_integration_ref()?;
                self.task_finished(task, outcome)?;
            }
            ExecEvent::CheckFinished(end) => {
                let may_start_work = self.brakes().may_start_work();
                if let Some(fix) = self.checks.finished(&mut self.run, end, may_start_work)? {
                    self.start_task(fix.task, fix.from, None)?;
                }
            }
            ExecEvent::Prepared { stream, at, result } => {
                let events = self.channels.events();
                self.pool.prepared(&self.run, stream, at, result, events);
            }
            ExecEvent::Notified(end) => {
                self.notifying -= 1;
                notify::ended(&mut self.run, end);
                self.run.save()?;
            }
        }
        Ok(())
    }

    /// `task`'s executor ended: what its outcome means for the run, recorded and saved.
    fn task_finished(&mut self, task: TaskId, outcome: TaskOutcome) -> Result<()> {
        let (start, started_at) = match &self.run.task_mut(task).state {
            TaskState::Running {
                start, started_at, ..
            } => (start.clone(), *started_at),
            other => {
                return Err(Error::Internal(format!(
                    "task finished in state {}",
                    other.name()
                )));
            }
        };
        let outcome = self.budgets.finished(task, outcome);
        if self.stop_requested.contains(&task.stream.index()) && self.stopping.is_none() {
            return self.stopped_task(task, outcome, start, started_at);
        }
        let run = &mut self.run;
        match outcome {
            TaskOutcome::Committed {
                end,
                stats,
                agent,
                attempts,
            } => {
                run.count_attempts(task, attempts, agent);
                let stats = run.task_committed(task, start, started_at, end, stats);
                self.after_commit(task);
                self.run.save()?;
                let record = &self.run.state.streams[task.stream.index()];
                let event = Event::TaskCommitted {
                    stream: record.name.clone(),
                    task: task.number(),
                    tasks: record.tasks.len(),
                    commits: stats.commits,
                    files: stats.files,
                    insertions: stats.insertions,
                    deletions: stats.deletions,
                    duration_ms: agent.as_millis() as u64,
                };
                self.run.emit(event);
            }
            // A failure of streams' own steps while stopping is the stop, not the task: it stays
            // `Running`, and `resume` runs it again.
            TaskOutcome::Failed {
                reason: FailReason::Internal { .. },
                agent,
                attempts,
            } if self.stopping.is_some() => {
                run.count_attempts(task, attempts, agent);
                run.record_task_span(task, started_at, SpanOutcome::Interrupted);
                run.save()?;
            }
            TaskOutcome::Failed {
                reason,
                agent,
                attempts,
            } => {
                run.count_attempts(task, attempts, agent);
                run.task_failed(task, reason);
                run.save()?;
            }
            TaskOutcome::Stopped {
                stop,
                agent,
                attempts,
            } => {
                run.count_attempts(task, attempts, agent);
                run.task_stopped(task, stop);
                run.save()?;
            }
            TaskOutcome::Interrupted { agent, attempts } => {
                // Stays `Running`: `resume` keeps its work and runs it again from its start.
                run.count_attempts(task, attempts, agent);
                run.task_mut(task).waiting = None;
                run.record_task_span(task, started_at, SpanOutcome::Interrupted);
                run.save()?;
            }
        }
        Ok(())
    }

    /// A task's work is committed: queue it for integration (checked first, if the stream has
    /// a check) if this is a sync point.
    pub(super) fn after_commit(&mut self, task: TaskId) {
        let (state, sync) = (&self.run.state, self.run.sync());
        if let Some(unit) = decide::sync_unit(state, sync, task.stream.index(), task.index)
            && !self.run.state.queue.contains(&unit)
        {
            self.checks.unit_ready(&mut self.run, unit, &self.channels);
        }
    }
}
